/**
 * The one place an event becomes bytes on the node: the frame text
 * (`protocol/event-frame.ts`), its WebSocket frame (`wire-frame.ts`) and its
 * item for a connection's delta queue (`runs/delta-coalescer.ts`), each built
 * once per event and shared by every connection of a fan-out. It keeps the
 * last event framed: a fan-out, and a replay's events that follow it, ask for
 * the same event many times in a row.
 */
import { encodeEventFrame } from '../protocol/event-frame.js';
import type { StreamEvent } from '../broker/stream-engine.js';
import { pendingItemFromFrame, type PendingItem } from '../runs/delta-coalescer.js';
import { encodeTextFrame, wireHeaderLength } from './wire-frame.js';

/**
 * An event's `runId`, read from the front of its payload: `encodeEvent` writes
 * `"event":"<name>"` first and `,"runId":"<id>"` right after it when the event
 * has one, both free of characters JSON would escape.
 */
const RUN_ID_AT_FRONT = /^"event":"[^"]*","runId":"([^"]*)"/;

/**
 * The same, read from the front of a frame's text: the fields before the
 * payload (seq, id, ts) hold no quote, so the match cannot reach into `data`.
 */
const RUN_ID_IN_FRAME =
  /^\{"type":"event","seq":\d+,"id":"[^"]*","ts":\d+,"event":"[^"]*","runId":"([^"]*)"/;

/**
 * Enough of a frame to hold every field up to the run id: the prefix with an
 * id of 128 characters, an event name of 64 and a run id of 128, with room.
 */
const RUN_ID_HEAD_BYTES = 512;

export class EventFramer {
  private last: StreamEvent | null = null;
  private lastText: string | null = null;
  private lastWire: Buffer | null = null;
  private lastItem: PendingItem | null = null;

  /** The event's complete WebSocket frame: the engine's own when it kept one. */
  wire(event: StreamEvent): Buffer {
    if (event.wire !== undefined) return event.wire;
    if (event !== this.last) this.frame(event);
    return (this.lastWire ??= encodeTextFrame(this.text(event)));
  }

  /** The event's frame text (for sockets written through ws: adopted ones). */
  text(event: StreamEvent): string {
    if (event !== this.last) this.frame(event);
    if (this.lastText === null) {
      const { wire } = event;
      this.lastText =
        wire === undefined
          ? encodeEventFrame(event)
          : wire.toString('utf8', wireHeaderLength(wire));
    }
    return this.lastText;
  }

  /**
   * The event as an item of a connection's delta queue, built when a first
   * connection needs it (a lagging one, a replay) and then shared. Only a
   * non-critical `agent_thinking`/`agent_text` can merge, so only those are
   * parsed.
   */
  item(event: StreamEvent): PendingItem {
    if (event !== this.last) this.frame(event);
    if (this.lastItem !== null) return this.lastItem;
    const text = this.text(event);
    this.lastItem = isMergeableDelta(event)
      ? pendingItemFromFrame(text)
      : { kind: 'frame', frame: text, bytes: this.wire(event).length, seq: event.seq };
    return this.lastItem;
  }

  /** The event's `runId`, or undefined when it belongs to no run. */
  runIdOf(event: StreamEvent): string | undefined {
    const { wire } = event;
    if (wire === undefined) return RUN_ID_AT_FRONT.exec(event.payload)?.[1];
    const at = wireHeaderLength(wire);
    const head = wire.toString('latin1', at, Math.min(wire.length, at + RUN_ID_HEAD_BYTES));
    return RUN_ID_IN_FRAME.exec(head)?.[1];
  }

  private frame(event: StreamEvent): void {
    this.last = event;
    this.lastText = null;
    this.lastWire = null;
    this.lastItem = null;
  }
}

/** Only a non-critical `agent_thinking`/`agent_text` delta can merge with its neighbours. */
export function isMergeableDelta(event: Pick<StreamEvent, 'critical' | 'event'>): boolean {
  return !event.critical && (event.event === 'agent_thinking' || event.event === 'agent_text');
}
