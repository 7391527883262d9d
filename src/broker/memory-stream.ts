/**
 * One user stream of the memory broker: epoch, head, acked cursor, history and
 * the idempotency index. It keeps no limits of its own; `MemoryStreams` trims it.
 *
 * The history holds no object per event: the events' frames sit one after
 * another in a byte slab, and each event is five numbers in one array of
 * doubles (where its frame starts, its size, where its payload starts, its
 * time, its flag). An array of doubles is nothing for the garbage collector
 * to trace, so a long history no longer fills the old generation with small
 * objects (the fixed-rate p99 of docs/benchmarks.md). The rare strings (a publisher's id,
 * a waiting publisher's node) sit in a map by seq. `StoredEvent` views are
 * made when a publish hands an event on and when a read returns events.
 *
 * Invariant: the stored seqs are contiguous and end at `headSeq` (events only
 * leave from the oldest end), so the event of `seq` sits at index
 * `start + seq - firstSeq`.
 *
 * The slab is append-only: bytes once written never change, because views of
 * them may still wait in a socket's queue. When it is full, the live frames
 * are copied to a new slab twice their size (amortized O(1) per byte), so a
 * slab holds at most about twice the stream's live frames.
 */
import type { EncodedEvent } from '../protocol/event-frame.js';
import { EventFrameWriter, StoredEvent } from './stored-event.js';

/** Compact the backing array once this many dropped events make up half of it. */
const COMPACT_AT = 64;
/**
 * Numbers per event in `meta`: where its frame starts (a position in the
 * slab's logical bytes), the frame's size, where its payload starts in the
 * frame, its time stamp, 1 when critical.
 */
const STRIDE = 5;
const FRAME_AT = 0;
const FRAME_SIZE = 1;
const PAYLOAD_AT = 2;
const TS = 3;
const CRITICAL = 4;
/** The smallest slab: a few small frames. */
const MIN_SLAB_BYTES = 1024;
const EMPTY = Buffer.alloc(0);

/** What a few events carry beside their frame: kept by seq, only for those events. */
interface EventExtras {
  id?: string;
  awaitedBy?: string;
}

export class MemoryStream {
  headSeq = 0;
  ackedSeq = 0;
  /** Bytes of the stored payloads (UTF-8). */
  bytes = 0;
  /** Last publish, read or ack, for idle sweeps. */
  usedAt: number;

  private slab: Buffer = EMPTY;
  /** The logical byte position of `slab[0]`; positions only grow. */
  private slabBase = 0;
  /** The logical position after the last frame. */
  private end = 0;
  // A queue of events as `STRIDE` numbers each, and the index of the oldest:
  // O(1) append and drop. One array of doubles: nothing in it to trace.
  private meta: number[] = [];
  private start = 0;
  private extras: Map<number, EventExtras> | null = null;
  /** id → seq of the stored events only: an id leaves with its event. */
  // Created with the first publisher-chosen id: most streams never have one.
  private ids: Map<string, number> | null = null;

  constructor(
    readonly epoch: string,
    now: number,
  ) {
    this.usedAt = now;
  }

  get length(): number {
    return this.meta.length / STRIDE - this.start;
  }

  /** The first stored seq, or `headSeq + 1` when nothing is stored. */
  get firstSeq(): number {
    return this.headSeq - this.length + 1;
  }

  /** The oldest stored event's timestamp, if any. */
  get oldestTs(): number | undefined {
    return this.length > 0 ? this.meta[this.start * STRIDE + TS] : undefined;
  }

  /** Bytes the slab holds, live frames and spent ones: at most about twice the live frames. */
  get slabBytes(): number {
    return this.slab.length;
  }

  seqOfId(id: string): number | undefined {
    return this.ids?.get(id);
  }

  /**
   * Frames and appends the event of seq `headSeq + 1` (the caller assigned
   * it, and `id`: the publisher's or a generated one). Only ids a publisher
   * chose are indexed: generated ones never repeat. Returns the event, for
   * the fan-out.
   */
  append(
    seq: number,
    id: string,
    ts: number,
    encoded: EncodedEvent,
    awaitedBy: string | undefined,
  ): StoredEvent {
    const frame = new EventFrameWriter(seq, id, ts, encoded);
    const at = this.reserve(frame.size);
    frame.writeTo(this.slab, at);
    const wire = this.slab.subarray(at, at + frame.size);
    this.headSeq = seq;
    this.meta.push(this.end, frame.size, frame.payloadOffset, ts, encoded.critical ? 1 : 0);
    this.end += frame.size;
    if (encoded.id !== undefined || awaitedBy !== undefined) {
      const extras: EventExtras = {};
      if (encoded.id !== undefined) {
        extras.id = encoded.id;
        (this.ids ??= new Map()).set(encoded.id, seq);
      }
      if (awaitedBy !== undefined) extras.awaitedBy = awaitedBy;
      (this.extras ??= new Map()).set(seq, extras);
    }
    const stored = frame.view(wire, awaitedBy);
    this.bytes += stored.payloadBytes;
    return stored;
  }

  /** Drops the oldest stored event; returns its payload bytes (0 when empty). */
  dropOldest(): number {
    if (this.length === 0) return 0;
    const at = this.start * STRIDE;
    const bytes = (this.meta[at + FRAME_SIZE] as number) - (this.meta[at + PAYLOAD_AT] as number);
    if (this.extras !== null && this.extras.size > 0) {
      const seq = this.firstSeq;
      const id = this.extras.get(seq)?.id;
      if (id !== undefined) this.ids?.delete(id);
      this.extras.delete(seq);
    }
    this.bytes -= bytes;
    this.start++;
    if (this.length === 0) {
      // Nothing live: let the slab go (an idle stream holds no bytes).
      this.slab = EMPTY;
      this.slabBase = this.end;
    }
    if (this.start >= COMPACT_AT && this.start * STRIDE * 2 >= this.meta.length) {
      this.meta = this.meta.slice(this.start * STRIDE);
      this.start = 0;
    }
    return bytes;
  }

  /** The stored events with a seq above `seq`, oldest first. */
  after(seq: number): StoredEvent[] {
    const first = this.firstSeq;
    const skip = Math.max(0, seq + 1 - first);
    const events: StoredEvent[] = [];
    const { meta } = this;
    for (let i = this.start + skip; i * STRIDE < meta.length; i++) {
      const at = i * STRIDE;
      const eventSeq = first + (i - this.start);
      const from = (meta[at + FRAME_AT] as number) - this.slabBase;
      const extras = this.extras?.get(eventSeq);
      events.push(
        new StoredEvent(
          eventSeq,
          meta[at + TS] as number,
          meta[at + CRITICAL] === 1,
          this.slab.subarray(from, from + (meta[at + FRAME_SIZE] as number)),
          meta[at + PAYLOAD_AT] as number,
          extras?.id,
          extras?.awaitedBy,
        ),
      );
    }
    return events;
  }

  /**
   * Room for `size` more bytes at the end; returns where to write in the
   * slab. A full slab is replaced, never written over: the live frames move
   * to a new one, twice as large as they need.
   */
  private reserve(size: number): number {
    const used = this.end - this.slabBase;
    if (used + size <= this.slab.length) return used;
    const liveFrom =
      this.length > 0 ? (this.meta[this.start * STRIDE + FRAME_AT] as number) : this.end;
    const live = this.end - liveFrom;
    const next = Buffer.allocUnsafe(Math.max(MIN_SLAB_BYTES, 2 * (live + size)));
    this.slab.copy(next, 0, liveFrom - this.slabBase, used);
    this.slab = next;
    this.slabBase = liveFrom;
    return live;
  }
}
