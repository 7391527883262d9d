/**
 * One user stream of the memory broker: epoch, head, acked cursor, history and
 * the idempotency index. It keeps no limits of its own; `MemoryStreams` trims it.
 *
 * The history holds no object per event: the events' frames sit one after
 * another in a byte slab, and each event is five numbers in a ring of
 * doubles outside the V8 heap (where its frame starts, its size, where its
 * payload starts, its time, its flag). Nothing in either is for the garbage
 * collector to trace or copy, so a long history neither fills the old
 * generation with small objects nor makes scavenges copy it while it grows
 * (the fixed-rate p99 of docs/benchmarks.md). The rare strings (a publisher's id,
 * a waiting publisher's node) sit in a map by seq. `StoredEvent` views are
 * made when a publish hands an event on and when a read returns events.
 *
 * Invariant: the stored seqs are contiguous and end at `headSeq` (events only
 * leave from the oldest end), so the event of `seq` is the ring's
 * `seq - firstSeq`-th from its oldest slot.
 *
 * The slab (`memory-slab.ts`) is append-only: bytes once written never
 * change, because views of them may still wait in a socket's queue. It is a
 * queue of chunks, let go once their frames are dropped: nothing is copied
 * when it grows, and it holds at most about twice the stream's live frames.
 */
import type { EncodedEvent } from '../protocol/event-frame.js';
import { FrameSlab } from './memory-slab.js';
import { EventFrameWriter, StoredEvent } from './stored-event.js';
import type { StreamHandlers } from './stream-engine.js';

/** Events the smallest ring holds (a new ring holds up to twice as many). */
const MIN_RING = 8;
/** Rings smaller than this grow fourfold, larger ones double. */
const RING_FAST_GROWTH_BELOW = 256;
/**
 * Numbers per event in `meta`: the serial of its slab chunk, where its frame
 * starts in that chunk, the frame's size, where its payload starts in the
 * frame, its time stamp, 1 when critical.
 */
const STRIDE = 6;
const CHUNK = 0;
const FRAME_AT = 1;
const FRAME_SIZE = 2;
const PAYLOAD_AT = 3;
const TS = 4;
const CRITICAL = 5;

/** What a few events carry beside their frame: kept by seq, only for those events. */
interface EventExtras {
  id?: string;
  awaitedBy?: string;
}

/**
 * A ring of `events` slots, not zeroed: a slot is always written before it
 * is read (only the `count` slots from `oldest` are live). `new
 * Float64Array` zeroes its memory, and zeroing a fresh ring touches every
 * page of it at once: a ring grown fourfold is mostly slack, and each page
 * touched for the first time costs a page fault (about 10 µs on the bench's
 * VM), here for slots a stream may never fill (docs/performance.md, "Seventh
 * pass"). Uninitialised, a page of slack costs nothing until a slot in it is
 * written.
 */
export function uninitializedRing(events: number): Float64Array {
  const bytes = Buffer.allocUnsafeSlow(events * STRIDE * Float64Array.BYTES_PER_ELEMENT);
  return new Float64Array(bytes.buffer, bytes.byteOffset, events * STRIDE);
}

export class MemoryStream {
  headSeq = 0;
  ackedSeq = 0;
  /** Bytes of the stored payloads (UTF-8). */
  bytes = 0;
  /** Last publish, read or ack, for idle sweeps. */
  usedAt: number;
  /**
   * The nodes subscribed to this stream's user: the very array
   * `MemoryStreams` keeps by user id (null when no node is subscribed), set
   * there wherever that array is made or dropped. A publish reads it here:
   * each lookup by user id in a map of thousands of users was a cache miss,
   * and a publish made six (docs/performance.md, "Seventh pass").
   */
  nodes: StreamHandlers[] | null = null;

  private readonly slab = new FrameSlab();
  /** Bytes of the stored frames (headers included): what sizes a new slab chunk. */
  private frameBytes = 0;
  // A ring of events as `STRIDE` numbers each, the slot of the oldest and
  // the count: O(1) append and drop. A Float64Array: its numbers live outside
  // the V8 heap, so a growing history is never copied by a scavenge nor
  // promoted (a growing `number[]` was: its new backing store was born young
  // each time it grew). Null while the stream holds nothing.
  private meta: Float64Array | null = null;
  private oldest = 0;
  private count = 0;
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
    return this.count;
  }

  /** The first stored seq, or `headSeq + 1` when nothing is stored. */
  get firstSeq(): number {
    return this.headSeq - this.length + 1;
  }

  /** The oldest stored event's timestamp, if any. */
  get oldestTs(): number | undefined {
    return this.meta !== null && this.count > 0 ? this.meta[this.oldest * STRIDE + TS] : undefined;
  }

  /** Bytes the slab holds, live frames and spent ones: at most about twice the live frames. */
  get slabBytes(): number {
    return this.slab.bytes;
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
    const at = this.slab.reserve(frame.size, this.frameBytes);
    const chunk = this.slab.tailSerial;
    const wire = this.slab.frame(chunk, at, frame.size);
    frame.writeTo(wire, 0);
    this.headSeq = seq;
    const meta = this.roomForOne();
    const slot = this.at(this.count);
    meta[slot + CHUNK] = chunk;
    meta[slot + FRAME_AT] = at;
    meta[slot + FRAME_SIZE] = frame.size;
    meta[slot + PAYLOAD_AT] = frame.payloadOffset;
    meta[slot + TS] = ts;
    meta[slot + CRITICAL] = encoded.critical ? 1 : 0;
    this.count++;
    this.frameBytes += frame.size;
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
    const meta = this.meta;
    if (meta === null || this.count === 0) return 0;
    const at = this.oldest * STRIDE;
    const size = meta[at + FRAME_SIZE] as number;
    const bytes = size - (meta[at + PAYLOAD_AT] as number);
    if (this.extras !== null && this.extras.size > 0) {
      const seq = this.firstSeq;
      const id = this.extras.get(seq)?.id;
      if (id !== undefined) this.ids?.delete(id);
      this.extras.delete(seq);
    }
    this.bytes -= bytes;
    this.frameBytes -= size;
    this.oldest = this.oldest + 1 === this.capacity ? 0 : this.oldest + 1;
    this.count--;
    if (this.count === 0) {
      // Nothing live: let the slab and the ring go (an idle stream holds no bytes).
      this.slab.clear();
      this.meta = null;
      this.oldest = 0;
      return bytes;
    }
    this.slab.dropBefore(meta[this.oldest * STRIDE + CHUNK] as number);
    if (this.capacity > MIN_RING && this.count * 4 <= this.capacity) {
      // A history that shrank (TTL, a lower bound) gives back its ring's slack.
      this.resize(Math.ceil(this.capacity / 2));
    }
    return bytes;
  }

  /** The stored events with a seq above `seq`, oldest first. */
  after(seq: number): StoredEvent[] {
    const first = this.firstSeq;
    const skip = Math.max(0, seq + 1 - first);
    const events: StoredEvent[] = [];
    const { meta } = this;
    if (meta === null) return events;
    for (let i = skip; i < this.count; i++) {
      const at = this.at(i);
      const eventSeq = first + i;
      const extras = this.extras?.get(eventSeq);
      events.push(
        new StoredEvent(
          eventSeq,
          meta[at + TS] as number,
          meta[at + CRITICAL] === 1,
          this.slab.frame(
            meta[at + CHUNK] as number,
            meta[at + FRAME_AT] as number,
            meta[at + FRAME_SIZE] as number,
          ),
          meta[at + PAYLOAD_AT] as number,
          extras?.id,
          extras?.awaitedBy,
        ),
      );
    }
    return events;
  }

  /** Events the ring can hold (0 without a ring). */
  private get capacity(): number {
    return this.meta === null ? 0 : this.meta.length / STRIDE;
  }

  /**
   * Where the `index`-th oldest event's numbers start in the ring. The
   * oldest's is `oldest * STRIDE` (`oldest` is always inside the ring): the
   * age check reads it on every publish, without this division.
   */
  private at(index: number): number {
    return ((this.oldest + index) % this.capacity) * STRIDE;
  }

  /** The ring, with room for one more event (doubled when full). */
  private roomForOne(): Float64Array {
    if (this.meta === null) {
      // A first size between 8 and 15 events, at random: streams fed in step
      // (a round-robin publisher) would otherwise all grow their rings in the
      // same round, and 2,000 allocations in one turn showed as a stall in
      // the CPU profile. Doubling keeps them apart.
      this.meta = uninitializedRing(MIN_RING + Math.floor(Math.random() * MIN_RING));
      this.oldest = 0;
    } else if (this.count === this.capacity) {
      // Fourfold while small: a growing history reallocates its ring half as
      // often (each is an external allocation); doubling past that bounds the slack.
      this.resize(this.capacity * (this.capacity < RING_FAST_GROWTH_BELOW ? 4 : 2));
    }
    return this.meta as Float64Array;
  }

  /** Moves the live events, oldest first, to a ring of `events` slots. */
  private resize(events: number): void {
    const old = this.meta as Float64Array;
    const next = uninitializedRing(events);
    const fromOldest = Math.min(this.count, this.capacity - this.oldest);
    next.set(old.subarray(this.oldest * STRIDE, (this.oldest + fromOldest) * STRIDE), 0);
    next.set(old.subarray(0, (this.count - fromOldest) * STRIDE), fromOldest * STRIDE);
    this.meta = next;
    this.oldest = 0;
  }
}
