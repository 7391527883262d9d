/**
 * The client's timing rules, pure where they can be: when to refresh a token,
 * and the watchdog that drops a connection nothing was heard on.
 */

/** Refreshes never come closer together than this, whatever the token's lifetime. */
export const MIN_REFRESH_DELAY_MS = 1000;
/** setTimeout's longest delay (2^31-1 ms, about 24.8 days); a longer one fires after 1 ms. */
export const MAX_TIMER_DELAY_MS = 2_147_483_647;

/**
 * When to send the next `refresh`: `refreshLeadMs` before `expiresAt` (at
 * most half the remaining life, at least `MIN_REFRESH_DELAY_MS` away). Past
 * setTimeout's limit, `capped`: wait the longest allowed delay, then plan again.
 */
export function refreshDelay(
  expiresAt: number,
  now: number,
  refreshLeadMs: number,
): { delayMs: number; capped: boolean } {
  const remaining = expiresAt - now;
  const delay = Math.max(MIN_REFRESH_DELAY_MS, remaining - Math.min(refreshLeadMs, remaining / 2));
  const capped = delay > MAX_TIMER_DELAY_MS;
  return { delayMs: capped ? MAX_TIMER_DELAY_MS : delay, capped };
}

/**
 * Calls `onSilent` once nothing was heard for `silenceMs`, checked against
 * `lastHeard()` (so hearing something costs no timer reset).
 */
export class SilenceWatchdog {
  #timer: ReturnType<typeof setTimeout> | undefined;

  arm(silenceMs: number, lastHeard: () => number, onSilent: (silentMs: number) => void): void {
    clearTimeout(this.#timer);
    const check = (): void => {
      const silent = Date.now() - lastHeard();
      if (silent < silenceMs) {
        this.#timer = setTimeout(check, silenceMs - silent);
        return;
      }
      this.#timer = undefined;
      onSilent(silent);
    };
    this.#timer = setTimeout(check, silenceMs);
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
