/**
 * At most `limit` Redis steps of one kind in flight on a node; the others
 * wait their turn, first come first served, and at most `maxWaiting` wait.
 *
 * Why: ioredis starts a command's timeout when it writes the command. A
 * burst written at once (a resume storm's history reads, a turn of large
 * publishes) queues in Redis behind itself, and its last commands time out
 * though Redis is healthy: the bench's resume storm of 2,000 clients closed
 * up to 164 of them with 1012. Behind the gate a command's timeout covers its
 * own time in Redis, not the burst's.
 *
 * Order: a step that finds a free slot starts at once only when nobody
 * waits (a freed slot goes straight to the oldest waiter), so steps start in
 * the order they asked. Steps on one link therefore reach Redis in that order.
 */
import { BrokerUnavailableError } from '../broker.js';

export class InFlightGate {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    /** What the steps are, for the refusal's message ("history reads"). */
    private readonly what: string,
    private readonly limit: number,
    private readonly maxWaiting: number,
  ) {
    // `Infinity`: no bound (every step starts at once), for links where one
    // node-wide gate would be wrong (Redis Cluster: see RedisStreamOptions).
    if (!(Number.isInteger(limit) || limit === Infinity) || limit < 1) {
      throw new RangeError('limit must be an integer >= 1 or Infinity');
    }
    if (!Number.isInteger(maxWaiting) || maxWaiting < 0) {
      throw new RangeError('maxWaiting must be >= 0');
    }
  }

  /** Steps running now. */
  get inFlight(): number {
    return this.active;
  }

  /** Steps waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Runs `step` when a slot is free. Past `maxWaiting` waiting steps it
   * rejects at once with `BrokerUnavailableError` (a 503 or a 1012: retry).
   */
  async run<T>(step: () => Promise<T>): Promise<T> {
    if (this.active < this.limit) {
      this.active++;
    } else {
      if (this.waiting.length >= this.maxWaiting) {
        throw new BrokerUnavailableError(
          `redis busy: ${this.maxWaiting} ${this.what} already wait for a slot`,
        );
      }
      // The slot is handed over by `release`: `active` stays as it is.
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    try {
      return await step();
    } finally {
      this.release();
    }
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next === undefined) this.active--;
    else next();
  }
}
