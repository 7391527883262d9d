/** The test helper `waitFor`: resolves on the condition, fails at the deadline. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { waitFor } from '../helpers/wait-for.js';

describe('waitFor', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('resolves with the first truthy value of the predicate', async () => {
    let calls = 0;
    const value = await waitFor(() => (++calls >= 3 ? { calls } : undefined), { intervalMs: 0 });
    expect(value).toEqual({ calls: 3 });
  });

  it('awaits an async predicate', async () => {
    let calls = 0;
    await expect(waitFor(async () => ++calls === 2)).resolves.toBe(true);
  });

  it('rejects at the deadline, naming what it waited for', async () => {
    const started = performance.now();
    await expect(waitFor(() => false, { timeoutMs: 50, what: 'the impossible' })).rejects.toThrow(
      'waitFor: condition not met within 50 ms: the impossible (last value: false)',
    );
    expect(performance.now() - started).toBeGreaterThanOrEqual(49);
  });

  it('rejects at once when the predicate throws', async () => {
    await expect(
      waitFor(() => {
        throw new Error('broken predicate');
      }),
    ).rejects.toThrow('broken predicate');
  });

  it('keeps polling on real timers while fake timers are installed', async () => {
    vi.useFakeTimers();
    let calls = 0;
    await expect(waitFor(() => ++calls >= 3, { intervalMs: 1 })).resolves.toBe(true);
  });
});
