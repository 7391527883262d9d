import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  DEFAULT_BACKOFF_BASE_MS,
  DEFAULT_BACKOFF_CAP_MS,
  ReconnectScheduler,
  exponentialBackoff,
} from '../../src/client/index.js';
import type { BackoffPolicy } from '../../src/client/index.js';

const unit = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });

describe('exponentialBackoff (full jitter)', () => {
  it('keeps every delay within [0, min(cap, base * 2^attempt)] as a whole number of ms', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.integer({ min: 0, max: 2000 }),
        unit,
        (baseMs, extra, attempt, random) => {
          const capMs = baseMs + extra;
          const delay = exponentialBackoff({ baseMs, capMs })(attempt, random);
          expect(Number.isInteger(delay)).toBe(true);
          expect(delay).toBeGreaterThanOrEqual(0);
          expect(delay).toBeLessThanOrEqual(Math.min(capMs, baseMs * 2 ** attempt));
        },
      ),
    );
  });

  it('is a pure function of (attempt, random)', () => {
    const policy = exponentialBackoff();
    fc.assert(
      fc.property(fc.nat(64), unit, (attempt, random) => {
        expect(policy(attempt, random)).toBe(policy(attempt, random));
      }),
    );
  });

  it('grows the ceiling exponentially up to the cap, and jitter spans the whole range', () => {
    const policy = exponentialBackoff({ baseMs: 100, capMs: 1000 });
    const top = 1 - Number.EPSILON;
    expect([0, 1, 2, 3, 4, 5].map((n) => policy(n, top))).toEqual([99, 199, 399, 799, 999, 999]);
    expect(policy(3, 0)).toBe(0);
    expect(policy(3, 0.5)).toBe(400);
    // Defaults: 500 ms base, 30 s cap.
    const defaults = exponentialBackoff();
    expect(defaults(0, top)).toBe(DEFAULT_BACKOFF_BASE_MS - 1);
    expect(defaults(50, top)).toBe(DEFAULT_BACKOFF_CAP_MS - 1);
  });

  it('treats a nonsense attempt as 0 and a nonsense draw as 0', () => {
    const policy = exponentialBackoff({ baseMs: 100, capMs: 1000 });
    expect(policy(-3, 0.99)).toBe(99);
    expect(policy(1.5, 0.99)).toBe(99);
    expect(policy(2, Number.NaN)).toBe(0);
    expect(policy(2, 1)).toBe(0);
  });

  it('refuses bad options with the option named', () => {
    expect(() => exponentialBackoff({ baseMs: 0 })).toThrow(/backoff\.baseMs/);
    expect(() => exponentialBackoff({ baseMs: 100, capMs: 50 })).toThrow(/backoff\.capMs/);
  });
});

describe('ReconnectScheduler', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A policy that records the attempts it is asked about and waits `10 * (attempt + 1)` ms. */
  function recordingPolicy(): { policy: BackoffPolicy; attempts: number[] } {
    const attempts: number[] = [];
    return { attempts, policy: (attempt) => (attempts.push(attempt), 10 * (attempt + 1)) };
  }

  it('runs the attempt only once its delay has passed', () => {
    const scheduler = new ReconnectScheduler(exponentialBackoff({ baseMs: 1000 }), () => 0.5);
    let runs = 0;
    const delay = scheduler.schedule(() => runs++);
    expect(delay).toBe(500);
    vi.advanceTimersByTime(499);
    expect(runs).toBe(0);
    expect(scheduler.pending).toBe(true);
    vi.advanceTimersByTime(1);
    expect(runs).toBe(1);
    expect(scheduler.pending).toBe(false);
  });

  it('counts consecutive attempts and starts again from 0 after a successful open', () => {
    const { policy, attempts } = recordingPolicy();
    const scheduler = new ReconnectScheduler(policy, Math.random);
    for (let i = 0; i < 3; i++) {
      scheduler.schedule(() => {});
      vi.runOnlyPendingTimers();
    }
    expect(scheduler.attempt).toBe(3);
    scheduler.reset(); // the client's welcome
    scheduler.schedule(() => {});
    expect(attempts).toEqual([0, 1, 2, 0]);
  });

  it('matches a model: the attempt passed to the policy is the number of failures since the last open', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('fail', 'open'), { maxLength: 60 }), (steps) => {
        const { policy, attempts } = recordingPolicy();
        const scheduler = new ReconnectScheduler(policy, () => 0);
        const expected: number[] = [];
        let failures = 0;
        for (const step of steps) {
          if (step === 'open') {
            scheduler.reset();
            failures = 0;
          } else {
            expected.push(failures++);
            scheduler.schedule(() => {});
            vi.runOnlyPendingTimers();
          }
        }
        expect(attempts).toEqual(expected);
      }),
    );
  });

  it('cancel and reset drop a pending attempt; a new schedule replaces the old one', () => {
    const scheduler = new ReconnectScheduler(() => 100, Math.random);
    const runs: string[] = [];
    scheduler.schedule(() => runs.push('a'));
    scheduler.cancel();
    scheduler.schedule(() => runs.push('b'));
    scheduler.schedule(() => runs.push('c'));
    vi.advanceTimersByTime(1000);
    expect(runs).toEqual(['c']);
    scheduler.schedule(() => runs.push('d'));
    scheduler.reset();
    vi.advanceTimersByTime(1000);
    expect(runs).toEqual(['c']);
    expect(vi.getTimerCount()).toBe(0);
  });
});
