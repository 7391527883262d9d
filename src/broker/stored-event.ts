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
import { encodeEventFramePrefix, type EncodedEvent } from '../protocol/event-frame.js';
import { encodeTextFrame, encodeTextFrameOf, wireHeaderLength } from '../gateway/wire-frame.js';
import type { StreamEvent } from './stream-engine.js';

/** What precedes the id in a frame (`encodeEventFramePrefix`); the seq before it is digits. */
const ID_KEY = Buffer.from(',"id":"', 'latin1');
const QUOTE = 0x22;

export class StoredEvent implements StreamEvent {
  readonly wire: Buffer;
  /**
   * The publisher's id; a generated one is not kept as a string (three
   * strings per event for the collector to trace), it is read back from the
   * frame when asked for.
   */
  private readonly ownId: string | undefined;
  /** Where `payload` starts in `wire`; the rest of `wire` before it is ASCII. */
  private readonly payloadAt: number;

  constructor(
    readonly seq: number,
    id: string,
    readonly ts: number,
    readonly event: string,
    readonly critical: boolean,
    readonly awaitedBy: string | undefined,
    encoded: EncodedEvent,
  ) {
    // The frame's text before the payload is ASCII: one byte per character.
    const prefix = encodeEventFramePrefix(seq, id, ts);
    const { payloadHead, dataJson } = encoded;
    this.wire =
      payloadHead === undefined || dataJson === undefined
        ? encodeTextFrame(`${prefix}${encoded.payload}`)
        : encodeTextFrameOf(`${prefix}${payloadHead}`, dataJson, '}');
    this.payloadAt = wireHeaderLength(this.wire) + prefix.length;
    this.ownId = encoded.id;
  }

  get id(): string {
    if (this.ownId !== undefined) return this.ownId;
    const start = this.wire.indexOf(ID_KEY) + ID_KEY.length;
    return this.wire.toString('latin1', start, this.wire.indexOf(QUOTE, start));
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
    return new StoredEvent(seq, id, ts, encoded.event, encoded.critical, awaitedBy, encoded);
  }
}
