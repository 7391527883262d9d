/**
 * An event as the memory engine keeps it: its complete WebSocket frame, built
 * once in the publish step, and the few fields the engine and the nodes read
 * (seq, id, name, critical, time, `awaitedBy`). Nodes write `wire` as is, for
 * the live fan-out and for every replay, so an event is framed once in its
 * life rather than once per node and read.
 *
 * Why bytes: the payload text (often a tree of concatenated strings) was the
 * bulk of what the garbage collector traced and copied in a long history;
 * the frame's bytes live outside the JS heap, so history costs the collector
 * one small object and one view per event, and a 64 KiB event is never
 * copied by a scavenge. The payload text is decoded from the bytes only when
 * asked for (a merge of deltas, an AG-UI start), never on the hot path.
 */
import { encodeEventFrame, type EncodedEvent } from '../protocol/event-frame.js';
import { encodeTextFrame, wireHeaderLength } from '../gateway/wire-frame.js';
import type { StreamEvent } from './stream-engine.js';

export class StoredEvent implements StreamEvent {
  readonly wire: Buffer;
  /** Where `payload` starts in `wire`; the rest of `wire` before it is ASCII. */
  private readonly payloadAt: number;

  constructor(
    readonly seq: number,
    readonly id: string,
    readonly ts: number,
    readonly event: string,
    readonly critical: boolean,
    payload: string,
    readonly awaitedBy: string | undefined,
  ) {
    const text = encodeEventFrame({ seq, id, ts, payload });
    this.wire = encodeTextFrame(text);
    // The frame's text before the payload is ASCII: one byte per character.
    this.payloadAt = wireHeaderLength(this.wire) + text.length - payload.length;
  }

  /** `EncodedEvent.payload`, decoded from the frame (not kept as a string). */
  get payload(): string {
    return this.wire.toString('utf8', this.payloadAt);
  }

  /** The payload's UTF-8 bytes: what the history's byte limits count. */
  get payloadBytes(): number {
    return this.wire.length - this.payloadAt;
  }

  /** One stored event for `encoded` at `seq`. */
  static of(
    seq: number,
    id: string,
    ts: number,
    encoded: EncodedEvent,
    awaitedBy: string | undefined,
  ): StoredEvent {
    return new StoredEvent(
      seq,
      id,
      ts,
      encoded.event,
      encoded.critical,
      encoded.payload,
      awaitedBy,
    );
  }
}
