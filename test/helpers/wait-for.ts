/**
 * Waits on a condition with a deadline, instead of sleeping: polls
 * `predicate` every `intervalMs` (default 5) until it returns a truthy value, or rejects after `timeoutMs` naming what it waited for.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  options: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (options.timeoutMs ?? 5000);
  for (;;) {
    const value = await predicate();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${options.what ?? 'a condition'}`);
    }
    await new Promise<void>((resolve) => setTimeout(resolve, options.intervalMs ?? 5));
  }
}
