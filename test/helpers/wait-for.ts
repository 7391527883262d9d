/**
 * Waiting on a condition with a deadline, never on the clock alone: the test
 * proceeds the moment the condition holds and fails with a description when
 * the deadline passes.
 *
 * The timer and clock are captured when this module loads, so `waitFor` keeps
 * working when a test installs vitest fake timers afterwards.
 */
const realSetTimeout = globalThis.setTimeout;
const realSetImmediate = globalThis.setImmediate;
const realNow = performance.now.bind(performance);

export interface WaitForOptions {
  /** Deadline from the first check. Default 5000 ms. */
  timeoutMs?: number;
  /** Pause between checks; 0 polls on every turn of the event loop. Default 5 ms. */
  intervalMs?: number;
  /** What is awaited, for the error at the deadline. Default: the predicate's source. */
  what?: string;
}

/**
 * Resolves with the first truthy value of `predicate` (sync or async). Rejects
 * when the deadline passes, or at once when `predicate` throws.
 *
 * @example
 * await waitFor(() => handlers.seqsOf('alice').length === 3, { what: 'three events' });
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  options: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const { timeoutMs = 5000, intervalMs = 5 } = options;
  const deadline = realNow() + timeoutMs;
  let last: T;
  for (;;) {
    last = await predicate();
    if (last) return last as NonNullable<T>;
    if (realNow() >= deadline) {
      const what = options.what ?? predicate.toString();
      throw new Error(
        `waitFor: condition not met within ${timeoutMs} ms: ${what} (last value: ${String(last)})`,
      );
    }
    await new Promise<void>((resolve) => {
      if (intervalMs <= 0) realSetImmediate(resolve);
      else realSetTimeout(resolve, intervalMs);
    });
  }
}
