/**
 * The client's position in its user's stream, `{epoch, lastSeq}`, and the
 * exactly-once filter: the server delivers at least once (a replay after a
 * lost ack repeats events); the SDK drops every `seq` it already delivered.
 */

export interface StreamCursor {
  epoch: string;
  lastSeq: number;
}

export type WelcomeOutcome =
  /** No cursor yet: this is the first stream the client sees. */
  | 'first'
  /** Same epoch: the cursor stays. */
  | 'same-epoch'
  /** Another epoch: old seqs are void; the cursor restarts before the welcome's `replay.from`. */
  | 'new-epoch';

export class SeqTracker {
  #epoch: string | null = null;
  #lastSeq = 0;

  constructor(initial?: StreamCursor | null) {
    if (initial) {
      this.#epoch = initial.epoch;
      this.#lastSeq = initial.lastSeq;
    }
  }

  get epoch(): string | null {
    return this.#epoch;
  }

  /** Highest seq delivered to the app in the current epoch (0: none). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** The resume cursor for the next handshake; null before the first welcome. */
  cursor(): StreamCursor | null {
    return this.#epoch === null ? null : { epoch: this.#epoch, lastSeq: this.#lastSeq };
  }

  /**
   * A `welcome` names the stream's epoch and where its replay starts
   * (`replay.from`). Another epoch moves the cursor to `from - 1`: what comes
   * before `from` is not for this client (after a Redis restart that moved
   * the stream to a new epoch, the retained events before `from` are ones it
   * already has, docs/redis.md), so a reconnect before any event arrives
   * must not ask for them again.
   */
  onWelcome(epoch: string, from = 1): WelcomeOutcome {
    if (this.#epoch === epoch) return 'same-epoch';
    const outcome = this.#epoch === null ? 'first' : 'new-epoch';
    this.#epoch = epoch;
    this.#lastSeq = Number.isSafeInteger(from) && from > 1 ? from - 1 : 0;
    return outcome;
  }

  /**
   * True when `seq` is new and must be delivered (the cursor moves to it);
   * false for a duplicate (`seq <= lastSeq`).
   */
  accept(seq: number): boolean {
    if (seq <= this.#lastSeq) return false;
    this.#lastSeq = seq;
    return true;
  }

  /**
   * True when a merged frame (`seqFrom`..`seq`) starts at or before the
   * cursor and ends after it: part of it was delivered, part not. Its text
   * cannot be cut at the cursor, so it is neither new nor a duplicate; the
   * gateway never sends one (it merges only events it has not sent, and
   * replays from the cursor + 1).
   */
  overlaps(seqFrom: number, seq: number): boolean {
    return seqFrom <= this.#lastSeq && seq > this.#lastSeq;
  }
}
