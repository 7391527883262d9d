/**
 * Follows one user's stream on one node: turns the live messages of the
 * user's channel (which may be lost on a link cut, or arrive before this node
 * knows its position) into the Broker contract's point 2: `onEvent` in seq
 * order, each once, with no gap, unless `onResync` is raised.
 *
 * Rules, per live message of seq `s` in epoch `e`, with `last` the last seq
 * handed to `onEvent`:
 * - `e` is an epoch the follower already left (a message of the old stream
 *   queued behind the read that found the new one): dropped. Epochs never
 *   come back, so following it again would only flap `onResync`.
 * - `e` differs from the followed epoch: `onResync`, follow `e` from `s`.
 * - `s <= last`: already handed over (or covered by a resync): dropped.
 * - `s == last + 1`: handed over.
 * - `s > last + 1`: a gap; catch up from history (which reads to the head, so
 *   it also covers `s`), then go on. History that was trimmed, or that shows
 *   another epoch, raises `onResync` instead.
 * A catch-up that fails (Redis unreachable) keeps the position and the queue
 * and is retried after `retryDelayMs(attempt)`: continuity is only given up
 * (`onResync`) when history proves it lost, never because Redis was down.
 * After `onResync`, live delivery resumes after the point of the resync; the
 * gateway re-reads history for the rest, as the contract says.
 *
 * Where it starts: the first live message positions it (just before that
 * message). The channel was subscribed before the follower was asked for
 * events, and pub/sub hands a subscriber every message published after its
 * `SUBSCRIBE` in order, so that message is the first event the follower
 * owes and every later one follows it (or is a gap the rules above fill).
 * So a subscribe costs no read: a resume's own history read follows it, and
 * most of a storm's users publish nothing meanwhile. A link cut before the
 * first message (`catchUp` without a position) leaves nothing to count
 * from: the follower reads the head (`readHead`), starts there and raises
 * `onResync`, so the gateway re-reads what may have been lost.
 *
 * Messages wait in a queue while the follower has no position yet or a
 * catch-up is in flight. The queue is bounded (`maxPending`): past it, the
 * queued messages are dropped and replaced by one catch-up, which reads them
 * back from history.
 */
import type { StreamEvent } from '../stream-engine.js';

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
  /** Reads the stream's epoch and head (a start after a link cut lost the first messages). */
  readHead(): Promise<{ epoch: string; headSeq: number }>;
  onEvent(epoch: string, event: StreamEvent): void;
  onResync(): void;
  /** A catch-up failed; it is retried after `retryDelayMs(attempt)`. */
  onCatchUpError?(error: unknown): void;
  /** Delay before retrying a failed catch-up, by attempt (1, 2, …). */
  retryDelayMs(attempt: number): number;
}

/** Epochs left behind that are remembered (oldest forgotten first). */
const MAX_LEFT_EPOCHS = 8;

type Pending =
  { kind: 'live'; epoch: string; event: StreamEvent; filled?: boolean } | { kind: 'catch-up' };

export class StreamFollower {
  private epoch = '';
  /** Epochs this follower followed and left, newest last (at most MAX_LEFT_EPOCHS). */
  private readonly leftEpochs: string[] = [];
  private lastSeq = 0;
  private positioned = false;
  /** A link cut (or an overflow) came before any position: start from the head, with `onResync`. */
  private lost = false;
  /** A catch-up failed: nothing is handed over until its retry. */
  private stalled = false;
  private failures = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
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

  /**
   * Sets the starting point (the last seq already accounted for) and starts
   * handing over; without it, the first live message sets it.
   */
  start(epoch: string, lastSeq: number): void {
    this.epoch = epoch;
    this.lastSeq = lastSeq;
    this.positioned = true;
    void this.drain();
  }

  /** A live message from the user's channel. */
  live(epoch: string, event: StreamEvent): void {
    if (!this.positioned && !this.lost && !this.closed) {
      // The first message since the subscribe: nothing before it is owed.
      this.epoch = epoch;
      this.lastSeq = event.seq - 1;
      this.positioned = true;
    }
    // The common case, handed over at once: the next seq of the followed
    // epoch while nothing waits (the queue would hand it over the same way,
    // at the cost of a queue item and a drain's promise per event).
    if (
      this.positioned &&
      !this.closed &&
      !this.draining &&
      !this.stalled &&
      this.queue.length === 0 &&
      epoch === this.epoch &&
      event.seq === this.lastSeq + 1 &&
      !this.leftEpochs.includes(epoch)
    ) {
      this.lastSeq = event.seq;
      this.options.onEvent(epoch, event);
      return;
    }
    this.enqueue({ kind: 'live', epoch, event });
  }

  /** Catch up from history to the head (after a link cut: messages may have been lost). */
  catchUp(): void {
    if (!this.positioned) this.lost = true;
    this.enqueue({ kind: 'catch-up' });
  }

  /** Stops handing anything over; a catch-up in flight is ignored when it ends. */
  close(): void {
    this.closed = true;
    this.queue = [];
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
  }

  private enqueue(item: Pending): void {
    if (this.closed) return;
    if (this.queue.length >= this.options.maxPending) {
      // Everything dropped here, this item included, is in history: one
      // catch-up reads it back.
      this.queue = [{ kind: 'catch-up' }];
    } else {
      this.queue.push(item);
    }
    void this.drain();
  }

  /** True while a catch-up failed and waits for its retry. */
  get isStalled(): boolean {
    return this.stalled;
  }

  private async drain(): Promise<void> {
    if (this.draining || this.stalled || (!this.positioned && !this.lost)) return;
    this.draining = true;
    try {
      if (!this.positioned && !(await this.anchor())) return;
      while (!this.closed && !this.stalled) {
        const item = this.queue[0];
        if (item === undefined) break;
        if (item.kind === 'live' && this.leftEpochs.includes(item.epoch)) {
          this.queue.shift();
          continue;
        }
        const gap =
          item.kind === 'catch-up' ||
          (item.epoch === this.epoch && item.event.seq > this.lastSeq + 1 && !item.filled);
        if (gap) {
          if (!(await this.fill())) break;
          // The queue may have been replaced (overflow) while reading.
          if (item.kind === 'catch-up') {
            if (this.queue[0] === item) this.queue.shift();
          } else {
            item.filled = true;
          }
          continue;
        }
        this.queue.shift();
        const { epoch, event } = item;
        if (epoch !== this.epoch) {
          this.resync(epoch, event.seq);
        } else if (event.seq > this.lastSeq + 1) {
          // History was read to its head and still does not reach this message.
          this.resync(epoch, event.seq);
        } else if (event.seq === this.lastSeq + 1) {
          this.lastSeq = event.seq;
          this.options.onEvent(epoch, event);
        }
      }
    } finally {
      this.draining = false;
    }
  }

  /**
   * Reads history after the position and hands it over (or raises `onResync`
   * when history lost part of it). False when the read failed: the follower
   * stalls and retries later.
   */
  private async fill(): Promise<boolean> {
    let read: FollowerRead;
    try {
      read = await this.options.readAfter(this.lastSeq, this.epoch);
    } catch (error) {
      if (this.closed) return false;
      this.stall();
      this.options.onCatchUpError?.(error);
      return false;
    }
    this.failures = 0;
    if (this.closed) return false;
    if (read.gap || read.epoch !== this.epoch) {
      this.resync(read.epoch, read.headSeq);
      return true;
    }
    for (const event of read.events) {
      if (this.closed) return false;
      if (event.seq <= this.lastSeq) continue;
      this.lastSeq = event.seq;
      this.options.onEvent(read.epoch, event);
    }
    this.lastSeq = Math.max(this.lastSeq, read.headSeq);
    return true;
  }

  /**
   * Starts from the head after a link cut that came before any message: what
   * was published between the subscribe and the cut cannot be told from
   * history, so `onResync`. False when the read failed (stalled, retried).
   */
  private async anchor(): Promise<boolean> {
    // The head read covers the catch-ups asked for until now.
    this.queue = this.queue.filter((item) => item.kind === 'live');
    let head: { epoch: string; headSeq: number };
    try {
      head = await this.options.readHead();
    } catch (error) {
      if (this.closed) return false;
      this.stall();
      this.options.onCatchUpError?.(error);
      return false;
    }
    this.failures = 0;
    if (this.closed) return false;
    this.epoch = head.epoch;
    this.lastSeq = head.headSeq;
    this.positioned = true;
    this.lost = false;
    this.options.onResync();
    return true;
  }

  private stall(): void {
    this.stalled = true;
    this.failures++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.stalled = false;
      void this.drain();
    }, this.options.retryDelayMs(this.failures));
    this.retryTimer.unref?.();
  }

  private resync(epoch: string, seq: number): void {
    if (epoch !== this.epoch) {
      this.leftEpochs.push(this.epoch);
      if (this.leftEpochs.length > MAX_LEFT_EPOCHS) this.leftEpochs.shift();
    }
    this.epoch = epoch;
    this.lastSeq = seq;
    this.options.onResync();
  }
}
