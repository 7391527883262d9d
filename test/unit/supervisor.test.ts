import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { GatewayMetrics } from '../../src/observability/metrics.js';
import { Supervisor, restartDelay } from '../../src/tasks/supervisor.js';

describe('Supervisor', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('runs each task on its interval and records runs and duration', async () => {
    const supervisor = new Supervisor();
    let runs = 0;
    supervisor.add({ name: 'tick', intervalMs: 1000, run: () => void runs++ });
    supervisor.start();
    await vi.advanceTimersByTimeAsync(3500);
    expect(runs).toBe(3);
    const [snap] = supervisor.snapshot();
    expect(snap).toMatchObject({
      name: 'tick',
      runs: 3,
      failures: 0,
      healthy: true,
      state: 'idle',
    });
    expect(snap?.lastDurationMs).toBeGreaterThanOrEqual(0);
    supervisor.stop();
  });

  it('restarts a throwing task with backoff and reports it, then recovers', async () => {
    const metrics = new GatewayMetrics({ defaultMetrics: false });
    const supervisor = new Supervisor({ metrics, backoffBaseMs: 100, backoffMaxMs: 1000 });
    let calls = 0;
    supervisor.add({
      name: 'flaky',
      intervalMs: 1000,
      critical: true,
      failureThreshold: 3,
      run: () => {
        calls++;
        if (calls <= 4) throw new Error(`boom ${calls}`);
      },
    });
    supervisor.start();
    await vi.advanceTimersByTimeAsync(1000); // first run fails
    expect(supervisor.snapshot()[0]).toMatchObject({
      consecutiveFailures: 1,
      healthy: true,
      state: 'backoff',
    });
    await vi.advanceTimersByTimeAsync(100 + 200); // second and third failures
    expect(supervisor.snapshot()[0]).toMatchObject({ consecutiveFailures: 3, healthy: false });
    expect(supervisor.unhealthyCritical()[0]).toMatch(/task flaky failed 3 times in a row: boom 3/);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/agentsocket_task_healthy\{task="flaky"\} 0/);
    expect(text).toMatch(/agentsocket_task_runs_total\{task="flaky",outcome="error"\} 3/);
    await vi.advanceTimersByTimeAsync(400 + 800); // fourth fails, fifth succeeds
    expect(calls).toBe(5);
    expect(supervisor.snapshot()[0]).toMatchObject({
      consecutiveFailures: 0,
      healthy: true,
      failures: 4,
    });
    expect(supervisor.unhealthyCritical()).toEqual([]);
    supervisor.stop();
  });

  it('keeps other tasks running when several fail at once', async () => {
    const supervisor = new Supervisor({ backoffBaseMs: 50 });
    let healthyRuns = 0;
    supervisor.add({ name: 'a', intervalMs: 100, run: () => Promise.reject(new Error('a down')) });
    supervisor.add({
      name: 'b',
      intervalMs: 100,
      run: () => {
        throw new Error('b down');
      },
    });
    supervisor.add({ name: 'c', intervalMs: 100, run: () => void healthyRuns++ });
    supervisor.start();
    await vi.advanceTimersByTimeAsync(1000);
    expect(healthyRuns).toBe(10);
    const byName = Object.fromEntries(supervisor.snapshot().map((s) => [s.name, s]));
    expect(byName.a?.failures).toBeGreaterThan(3);
    expect(byName.b?.failures).toBeGreaterThan(3);
    expect(byName.c?.failures).toBe(0);
    supervisor.stop();
    expect(supervisor.snapshot().every((s) => s.state === 'stopped')).toBe(true);
  });

  it('doubles the restart delay up to its cap', () => {
    expect([1, 2, 3, 4, 10].map((n) => restartDelay(n, 100, 1000))).toEqual([
      100, 200, 400, 800, 1000,
    ]);
  });
});
