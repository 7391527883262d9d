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
import { encodeTextFrame } from './wire-frame.js';

/**
 * An event's `runId`, read from the front of its payload: `encodeEvent` writes
 * `"event":"<name>"` first and `,"runId":"<id>"` right after it when the event
 * has one, both free of characters JSON would escape.
 */
const RUN_ID_AT_FRONT = /^"event":"[^"]*","runId":"([^"]*)"/;

export class EventFramer {
  private last: StreamEvent | null = null;
  private lastText = '';
  private lastWire: Buffer = Buffer.alloc(0);
  private lastItem: PendingItem | null = null;

  /** The event's complete WebSocket frame. */
  wire(event: StreamEvent): Buffer {
    if (event !== this.last) this.frame(event);
    return this.lastWire;
  }

  /** The event's frame text (for sockets written through ws: adopted ones). */
  text(event: StreamEvent): string {
    if (event !== this.last) this.frame(event);
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
    const text = this.lastText;
    this.lastItem = isMergeableDelta(event)
      ? pendingItemFromFrame(text)
      : { kind: 'frame', frame: text, bytes: this.lastWire.length, seq: event.seq };
    return this.lastItem;
  }

  /** The event's `runId`, or undefined when it belongs to no run. */
  runIdOf(event: StreamEvent): string | undefined {
    return RUN_ID_AT_FRONT.exec(event.payload)?.[1];
  }

  private frame(event: StreamEvent): void {
    this.lastText = encodeEventFrame(event);
    this.lastWire = encodeTextFrame(this.lastText);
    this.lastItem = null;
    this.last = event;
  }
}

/** Only a non-critical `agent_thinking`/`agent_text` delta can merge with its neighbours. */
export function isMergeableDelta(event: Pick<StreamEvent, 'critical' | 'event'>): boolean {
  return !event.critical && (event.event === 'agent_thinking' || event.event === 'agent_text');
}
