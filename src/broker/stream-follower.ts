/**
 * Follows one user's stream on one node: turns the live messages of the
 * user's channel (which may be lost on a link cut, or arrive before this node
 * knows its position) into the Broker contract's point 2: `onEvent` in seq
 * order, each once, with no gap, unless `onResync` is raised.
 *
 * Rules, per live message of seq `s` in epoch `e`, with `last` the last seq
 * handed to `onEvent`:
 * - `e` differs from the followed epoch: `onResync`, follow `e` from `s`.
 * - `s <= last`: already handed over (or covered by a resync): dropped.
 * - `s == last + 1`: handed over.
 * - `s > last + 1`: a gap; catch up from history (which reads to the head, so
 *   it also covers `s`), then go on. A catch-up that fails, or finds the
 *   history trimmed or another epoch, raises `onResync` instead.
 * After `onResync`, live delivery resumes after the point of the resync; the
 * gateway re-reads history for the rest, as the contract says.
 *
 * Messages wait in a queue while the follower has no position yet or a
 * catch-up is in flight. The queue is bounded (`maxPending`): past it, the
 * queued messages are dropped and replaced by one catch-up, which reads them
 * back from history.
 */
import type { StreamEvent } from './broker.js';

/** A history read after a cursor, as the follower needs it. */
export interface FollowerRead {
  epoch: string;
  headSeq: number;
  /** Events after the cursor were lost (trimmed, expired, other epoch). */
  gap: boolean;
  events: StreamEvent[];
}

export interface StreamFollowerOptions {
  /** Bound of the queue of live messages waiting for a position or a catch-up. */
  maxPending: number;
  /** Reads the stored events after `seq` of `epoch`, up to the head. Rejects when it cannot. */
  readAfter(seq: number, epoch: string): Promise<FollowerRead>;
  onEvent(epoch: string, event: StreamEvent): void;
  onResync(): void;
  /** A catch-up failed (the follower already raised `onResync`). */
  onCatchUpError?(error: unknown): void;
}

type Pending = { kind: 'live'; epoch: string; event: StreamEvent } | { kind: 'catch-up' };

export class StreamFollower {
  private epoch = '';
  private lastSeq = 0;
  private positioned = false;
  /** Set after a failed catch-up: the next live message becomes the new position. */
  private rebase = false;
  private queue: Pending[] = [];
  private draining = false;
  private closed = false;

  constructor(private readonly options: StreamFollowerOptions) {
    if (!Number.isInteger(options.maxPending) || options.maxPending < 1) {
      throw new RangeError('maxPending must be a positive integer');
    }
  }

  /** The position: the epoch followed and the last seq handed to `onEvent`. */
  get position(): { epoch: string; lastSeq: number } | undefined {
    return this.positioned ? { epoch: this.epoch, lastSeq: this.lastSeq } : undefined;
  }

  /** Messages waiting (never more than `maxPending`). */
  get pending(): number {
    return this.queue.length;
  }

  /** Sets the starting point (the head when this node subscribed) and starts handing over. */
  start(epoch: string, lastSeq: number): void {
    this.epoch = epoch;
    this.lastSeq = lastSeq;
    this.positioned = true;
    void this.drain();
  }

  /** A live message from the user's channel. */
  live(epoch: string, event: StreamEvent): void {
    this.enqueue({ kind: 'live', epoch, event });
  }

  /** Catch up from history to the head (after a link cut: messages may have been lost). */
  catchUp(): void {
    this.enqueue({ kind: 'catch-up' });
  }

  /** Stops handing anything over; a catch-up in flight is ignored when it ends. */
  close(): void {
    this.closed = true;
    this.queue = [];
  }

  private enqueue(item: Pending): void {
    if (this.closed) return;
    if (this.queue.length >= this.options.maxPending) {
      // Everything dropped here is in history: one catch-up reads it back.
      this.queue = [{ kind: 'catch-up' }];
      if (item.kind === 'catch-up') return;
    }
    this.queue.push(item);
    void this.drain();
  }

  private async drain(): Promise<void> {
    if (this.draining || !this.positioned) return;
    this.draining = true;
    try {
      let item: Pending | undefined;
      while (!this.closed && (item = this.queue.shift()) !== undefined) {
        if (item.kind === 'catch-up') {
          await this.fill();
          continue;
        }
        const { epoch, event } = item;
        if (this.rebase) {
          this.rebase = false;
          this.epoch = epoch;
          this.lastSeq = event.seq;
          continue;
        }
        if (epoch !== this.epoch) {
          this.resync(epoch, event.seq);
          continue;
        }
        if (event.seq <= this.lastSeq) continue;
        if (event.seq > this.lastSeq + 1) {
          await this.fill();
          if (this.closed || this.rebase) {
            // The catch-up failed: this message is the new position.
            this.rebase = false;
            this.epoch = epoch;
            this.lastSeq = Math.max(this.lastSeq, event.seq);
            continue;
          }
          if (event.seq <= this.lastSeq) continue;
          if (event.seq > this.lastSeq + 1 || epoch !== this.epoch) {
            // History read to its head and still does not reach this message.
            this.resync(epoch, event.seq);
            continue;
          }
        }
        this.lastSeq = event.seq;
        this.options.onEvent(epoch, event);
      }
    } finally {
      this.draining = false;
    }
  }

  /** Reads history after the position and hands it over, or raises `onResync`. */
  private async fill(): Promise<void> {
    let read: FollowerRead;
    try {
      read = await this.options.readAfter(this.lastSeq, this.epoch);
    } catch (error) {
      if (this.closed) return;
      this.rebase = true;
      this.options.onCatchUpError?.(error);
      this.options.onResync();
      return;
    }
    if (this.closed) return;
    if (read.gap || read.epoch !== this.epoch) {
      this.resync(read.epoch, read.headSeq);
      return;
    }
    for (const event of read.events) {
      if (this.closed) return;
      if (event.seq <= this.lastSeq) continue;
      this.lastSeq = event.seq;
      this.options.onEvent(read.epoch, event);
    }
    this.lastSeq = Math.max(this.lastSeq, read.headSeq);
  }

  private resync(epoch: string, seq: number): void {
    this.epoch = epoch;
    this.lastSeq = seq;
    this.options.onResync();
  }
}
