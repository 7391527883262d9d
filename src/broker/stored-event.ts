/**
 * An event as the memory engine keeps it: its complete WebSocket frame, built
 * once in the publish step, read through this view. The Redis engine hands
 * on the same view, framed once per node where a live message arrives
 * (`fromPayload`), or by the read script for a history read (`wire.ts`). Nodes write `wire` as is,
 * for the live fan-out and for every replay, so an event is framed once in
 * its life rather than once per node and read.
 *
 * Why bytes: the payload text (often a tree of concatenated strings), the id
 * and the event object itself were the bulk of what the garbage collector
 * traced in a long history. The stream keeps the frames in a byte slab and a
 * few numbers per event (`memory-stream.ts`); a `StoredEvent` is made when a
 * publish hands the event on or a read returns it, and dies young. Its
 * payload, name and generated id are decoded from the bytes only when asked
 * for (a merge of deltas, a snapshot plan, an AG-UI start), never on the hot
 * path.
 */
import {
  EVENT_FRAME_PREFIX_PARTS,
  encodeEventFramePrefix,
  type EncodedEvent,
} from '../protocol/event-frame.js';
import {
  encodeTextFrameOf,
  textFrameHeaderLength,
  wireHeaderLength,
  writeTextFrameHeader,
} from '../gateway/wire-frame.js';
import { asciiBytes, decimalLength, putBytes, putDecimal } from './frame-bytes.js';
import type { StreamEvent } from './stream-engine.js';

/** What precedes the id in a frame (`encodeEventFramePrefix`); the seq before it is digits. */
const ID_KEY = Buffer.from(',"id":"', 'latin1');
/** What opens every payload (`encodeEvent`): the event name follows. */
const NAME_AT = '"event":"'.length;
const QUOTE = 0x22;

export class StoredEvent implements StreamEvent {
  constructor(
    readonly seq: number,
    readonly ts: number,
    readonly critical: boolean,
    /** The event's complete WebSocket frame. */
    readonly wire: Buffer,
    /** Where `payload` starts in `wire`; the rest of `wire` before it is ASCII. */
    private readonly payloadAt: number,
    /** The publisher's id; a generated one is read back from the frame. */
    private readonly ownId: string | undefined,
    readonly awaitedBy: string | undefined,
  ) {}

  get id(): string {
    if (this.ownId !== undefined) return this.ownId;
    const start = this.wire.indexOf(ID_KEY) + ID_KEY.length;
    return this.wire.toString('latin1', start, this.wire.indexOf(QUOTE, start));
  }

  /** Read from the frame each time (a few bytes): a view holds nothing it can decode. */
  get event(): string {
    const start = this.payloadAt + NAME_AT;
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

  /**
   * An event of a live message of the Redis engine, framed here once per
   * node (a history read comes framed by the read script: `wire.ts`).
   */
  static fromPayload(
    seq: number,
    id: string,
    ts: number,
    critical: boolean,
    payload: string,
    awaitedBy: string | undefined,
  ): StoredEvent {
    const prefix = encodeEventFramePrefix(seq, id, ts);
    const wire = encodeTextFrameOf(prefix, payload, '');
    // The prefix is ASCII: one byte per character.
    const payloadAt = wireHeaderLength(wire) + prefix.length;
    // The id is read back from the frame when asked for, as a read's is.
    return new StoredEvent(seq, ts, critical, wire, payloadAt, undefined, awaitedBy);
  }

  /** One event in a buffer of its own (the stream writes into its slab instead: `EventFrameWriter`). */
  static of(
    seq: number,
    id: string,
    ts: number,
    encoded: EncodedEvent,
    awaitedBy: string | undefined,
  ): StoredEvent {
    const frame = new EventFrameWriter(seq, id, ts, encoded);
    const wire = Buffer.allocUnsafe(frame.size);
    frame.writeTo(wire, 0);
    return frame.view(wire, awaitedBy);
  }
}

/** The frame's text before the payload, around seq, id and ts (`EVENT_FRAME_PREFIX_PARTS`). */
const [BEFORE_SEQ, BEFORE_ID, BEFORE_TS, BEFORE_PAYLOAD] = EVENT_FRAME_PREFIX_PARTS.map(
  asciiBytes,
) as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
const PREFIX_CONSTANT_BYTES =
  BEFORE_SEQ.length + BEFORE_ID.length + BEFORE_TS.length + BEFORE_PAYLOAD.length;

/**
 * The frame of one event, measured before it is written: the caller finds
 * `size` bytes (in a slab), then writes. The same bytes as
 * `encodeTextFrame(encodeEventFrame(...))`, written in parts: the prefix's
 * constants, digits and id go straight into the bytes (`frame-bytes.ts`), and
 * the payload's parts are not joined into one string (no copy of a large
 * `data`).
 */
export class EventFrameWriter {
  /** The frame's size in bytes, header included. */
  readonly size: number;
  private readonly head: string;
  private readonly body: string;
  private readonly tail: string;
  private readonly length: number;
  private readonly payloadAt: number;

  constructor(
    readonly seq: number,
    private readonly id: string,
    readonly ts: number,
    private readonly encoded: EncodedEvent,
  ) {
    const { payloadHead, dataJson } = encoded;
    if (payloadHead === undefined || dataJson === undefined) {
      this.head = '';
      this.body = encoded.payload;
      this.tail = '';
    } else {
      this.head = payloadHead;
      this.body = dataJson;
      this.tail = '}';
    }
    // The prefix is ASCII (ids are validated or generated): one byte per character.
    const prefixLength = PREFIX_CONSTANT_BYTES + decimalLength(seq) + id.length + decimalLength(ts);
    this.length =
      prefixLength + this.head.length + Buffer.byteLength(this.body, 'utf8') + this.tail.length;
    const headerLength = textFrameHeaderLength(this.length);
    this.size = headerLength + this.length;
    this.payloadAt = headerLength + prefixLength;
  }

  writeTo(target: Buffer, at: number): void {
    let end = at + writeTextFrameHeader(target, at, this.length);
    end = putBytes(target, end, BEFORE_SEQ);
    end = putDecimal(target, end, this.seq);
    end = putBytes(target, end, BEFORE_ID);
    end += target.write(this.id, end, 'latin1');
    end = putBytes(target, end, BEFORE_TS);
    end = putDecimal(target, end, this.ts);
    end = putBytes(target, end, BEFORE_PAYLOAD);
    if (this.head.length > 0) end += target.write(this.head, end, 'latin1');
    end += target.write(this.body, end, 'utf8');
    // The tail is a character or none: stored byte by byte.
    for (let i = 0; i < this.tail.length; i++) target[end++] = this.tail.charCodeAt(i);
  }

  /** Where the payload starts in the frame. */
  get payloadOffset(): number {
    return this.payloadAt;
  }

  /** The event over `wire`, the bytes `writeTo` wrote. */
  view(wire: Buffer, awaitedBy: string | undefined): StoredEvent {
    const { encoded } = this;
    return new StoredEvent(
      this.seq,
      this.ts,
      encoded.critical,
      wire,
      this.payloadAt,
      encoded.id,
      awaitedBy,
    );
  }
}
