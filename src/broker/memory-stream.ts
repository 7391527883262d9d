/**
 * One user stream of the memory broker: epoch, head, acked cursor, history and
 * the idempotency index. It keeps no limits of its own; `MemoryStreams` trims it.
 *
 * Invariant: the stored seqs are contiguous and end at `headSeq` or before it
 * (events only leave from the oldest end), so the event after `seq` sits at
 * index `seq + 1 - firstSeq`.
 */
import type { StreamEvent } from './stream-engine.js';

/** Compact the backing arrays once this many dropped slots make up half of them. */
const COMPACT_AT = 64;

export class MemoryStream {
  headSeq = 0;
  ackedSeq = 0;
  /** Bytes of the stored payloads (UTF-8). */
  bytes = 0;
  /** Last publish, read or ack, for idle sweeps. */
  usedAt: number;

  // A queue as two parallel arrays and a start index: O(1) append and drop
  // without a per-event wrapper object.
  private events: StreamEvent[] = [];
  private sizes: number[] = [];
  private start = 0;
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
    return this.events.length - this.start;
  }

  /** The first stored seq, or `headSeq + 1` when nothing is stored. */
  get firstSeq(): number {
    return this.events[this.start]?.seq ?? this.headSeq + 1;
  }

  /** The oldest stored event's timestamp, if any. */
  get oldestTs(): number | undefined {
    return this.events[this.start]?.ts;
  }

  seqOfId(id: string): number | undefined {
    return this.ids?.get(id);
  }

  /**
   * Appends the event of seq `headSeq + 1`; the caller assigned it. Only ids
   * a publisher chose are indexed: generated ones never repeat.
   */
  append(event: StreamEvent, bytes: number, indexId: boolean): void {
    this.headSeq = event.seq;
    this.events.push(event);
    this.sizes.push(bytes);
    if (indexId) (this.ids ??= new Map()).set(event.id, event.seq);
    this.bytes += bytes;
  }

  /** Drops the oldest stored event; returns its bytes (0 when empty). */
  dropOldest(): number {
    const event = this.events[this.start];
    if (event === undefined) return 0;
    const bytes = this.sizes[this.start] ?? 0;
    if (this.ids !== null && this.ids.size > 0) this.ids.delete(event.id);
    this.bytes -= bytes;
    this.start++;
    if (this.start >= COMPACT_AT && this.start * 2 >= this.events.length) {
      this.events = this.events.slice(this.start);
      this.sizes = this.sizes.slice(this.start);
      this.start = 0;
    }
    return bytes;
  }

  /** The stored events with a seq above `seq`, oldest first. */
  after(seq: number): StreamEvent[] {
    const skip = Math.max(0, seq + 1 - this.firstSeq);
    return this.events.slice(this.start + skip);
  }
}
