/**
 * Cumulative acks for one connection: the highest seq received is acked at
 * once when the event is critical (the server closes with 4408 if a critical
 * event waits longer than its ack timeout) and in batches otherwise, after
 * `delayMs` or `maxBatch` events, whichever comes first. Memory is O(1): only
 * the highest seq is kept, since an ack covers everything below it.
 */

export interface AckOptions {
  /** Longest wait before a non-critical event is acked, in ms. Default 1000. */
  delayMs?: number;
  /** Events after which a batch is acked at once. Default 100. */
  maxBatch?: number;
}

/**
 * A second: an ack of a non-critical event only moves the user's acked
 * cursor, which matters to a connection opened without a cursor (another
 * device), and this SDK resumes with its own cursor. At 100 ms a client
 * receiving 10 events a second acked about every other event, and each ack
 * frame costs the gateway about half what delivering an event does (an HTTP
 * request on the SSE transport): docs/performance.md, "Sixth pass".
 */
export const DEFAULT_ACK_DELAY_MS = 1000;
export const DEFAULT_ACK_MAX_BATCH = 100;

export class AckScheduler {
  readonly #delayMs: number;
  readonly #maxBatch: number;
  #received = 0;
  #acked = 0;
  #unacked = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** `send` writes one `{"type":"ack","seq"}` frame; it is called with increasing seqs only. */
  constructor(
    private readonly send: (seq: number) => void,
    options: AckOptions = {},
  ) {
    this.#delayMs = options.delayMs ?? DEFAULT_ACK_DELAY_MS;
    this.#maxBatch = options.maxBatch ?? DEFAULT_ACK_MAX_BATCH;
  }

  /** Highest seq acked on this connection (0: none). */
  get acked(): number {
    return this.#acked;
  }

  /**
   * An event with `seq` arrived on this connection (a duplicate too: its ack
   * may be the one the server is waiting for).
   */
  received(seq: number, critical: boolean): void {
    if (seq <= this.#received) {
      if (critical && seq > this.#acked) this.flush();
      return;
    }
    this.#received = seq;
    this.#unacked++;
    if (critical || this.#unacked >= this.#maxBatch) {
      this.flush();
    } else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.flush();
      }, this.#delayMs);
    }
  }

  /** Acks everything received so far, if anything is unacked. */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#unacked = 0;
    if (this.#received <= this.#acked) return;
    this.#acked = this.#received;
    this.send(this.#acked);
  }

  /** The connection is gone: drop the timer without sending. */
  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
