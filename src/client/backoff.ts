/**
 * Reconnect delays as a pure function of the attempt number: exponential
 * backoff with full jitter (a uniform draw between 0 and the exponential
 * ceiling), so a fleet of clients dropped at once does not reconnect in step.
 */

/**
 * A reconnect policy: the delay in ms before reconnect attempt `attempt`
 * (0 for the first reconnect after a drop), given a uniform draw `random` in
 * [0, 1). Pure: same inputs, same delay.
 */
export type BackoffPolicy = (attempt: number, random: number) => number;

export interface ExponentialBackoffOptions {
  /** Ceiling of the first attempt, in ms. Default 500. */
  baseMs?: number;
  /** Largest ceiling, in ms. Default 30 000. */
  capMs?: number;
}

export const DEFAULT_BACKOFF_BASE_MS = 500;
export const DEFAULT_BACKOFF_CAP_MS = 30_000;

/**
 * Full-jitter exponential backoff: the delay of attempt `n` is uniform in
 * `[0, min(capMs, baseMs * 2^n))`, rounded down to whole ms.
 *
 * @example
 * const policy = exponentialBackoff({ baseMs: 250, capMs: 10_000 });
 * policy(3, Math.random()); // somewhere in [0, 2000)
 */
export function exponentialBackoff(options: ExponentialBackoffOptions = {}): BackoffPolicy {
  const baseMs = options.baseMs ?? DEFAULT_BACKOFF_BASE_MS;
  const capMs = options.capMs ?? DEFAULT_BACKOFF_CAP_MS;
  if (!Number.isFinite(baseMs) || baseMs <= 0) {
    throw new TypeError(`option backoff.baseMs must be a positive number, got ${String(baseMs)}`);
  }
  if (!Number.isFinite(capMs) || capMs < baseMs) {
    throw new TypeError(`option backoff.capMs must be a number >= baseMs, got ${String(capMs)}`);
  }
  return (attempt, random) => {
    const n = Number.isSafeInteger(attempt) && attempt > 0 ? attempt : 0;
    // 2^n overflows to Infinity for large n; min() then picks the cap.
    const ceiling = Math.min(capMs, baseMs * 2 ** n);
    const r = random >= 0 && random < 1 ? random : 0;
    return Math.floor(r * ceiling);
  };
}
