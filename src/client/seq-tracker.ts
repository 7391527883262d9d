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
  /** Another epoch: the stream was recreated, old seqs are void, the cursor restarts at 0. */
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

  /** A `welcome` names the stream's epoch; a different one resets the cursor. */
  onWelcome(epoch: string): WelcomeOutcome {
    if (this.#epoch === epoch) return 'same-epoch';
    const outcome = this.#epoch === null ? 'first' : 'new-epoch';
    this.#epoch = epoch;
    this.#lastSeq = 0;
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
