/**
 * Counts reconnect attempts and runs the next one after the policy's delay.
 * The count grows with each scheduled attempt and goes back to 0 on `reset()`,
 * which the client calls once a connection has stayed open one heartbeat
 * interval after its `welcome` (not at the welcome: see docs/client.md).
 */
import type { BackoffPolicy } from './backoff.js';

export class ReconnectScheduler {
  #attempt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly policy: BackoffPolicy,
    private readonly random: () => number,
  ) {}

  /** Attempts scheduled since the last `reset()`. */
  get attempt(): number {
    return this.#attempt;
  }

  get pending(): boolean {
    return this.#timer !== undefined;
  }

  /**
   * Runs `run` after the policy's delay for the current attempt, then counts
   * the attempt. Replaces a pending one. Returns the delay in ms.
   */
  schedule(run: () => void): number {
    this.cancel();
    const delayMs = Math.max(0, this.policy(this.#attempt, this.random()));
    this.#attempt++;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      run();
    }, delayMs);
    return delayMs;
  }

  cancel(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** A connection opened: the next drop starts again from attempt 0. */
  reset(): void {
    this.cancel();
    this.#attempt = 0;
  }
}
