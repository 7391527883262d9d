import { describe, expect, it } from 'vitest';
import { BrokerUnavailableError } from '../../src/broker/broker.js';
import { InFlightGate } from '../../src/broker/redis/in-flight-gate.js';

/** A step that runs until `finish` is called; records when it started. */
function controlled(started: number[], n: number) {
  let finish!: () => void;
  const done = new Promise<number>((resolve) => (finish = () => resolve(n)));
  return {
    step: () => {
      started.push(n);
      return done;
    },
    finish: () => finish(),
  };
}

describe('InFlightGate', () => {
  it('runs at most `limit` steps at once, the rest in the order they asked', async () => {
    const gate = new InFlightGate('reads', 2, 10);
    const started: number[] = [];
    const steps = Array.from({ length: 5 }, (_, n) => controlled(started, n));
    const results = steps.map((s) => gate.run(s.step));
    // Two start in this turn, synchronously (a publish call is written at once).
    expect(started).toEqual([0, 1]);
    expect(gate.inFlight).toBe(2);
    expect(gate.queued).toBe(3);
    steps[1]!.finish();
    await results[1];
    await new Promise(setImmediate);
    expect(started).toEqual([0, 1, 2]);
    expect(gate.inFlight).toBe(2);
    // A newcomer never overtakes a waiter, even when a slot frees in between.
    const late = controlled(started, 9);
    const lateResult = gate.run(late.step);
    steps[0]!.finish();
    steps[2]!.finish();
    await Promise.all([results[0], results[2]]);
    await new Promise(setImmediate);
    expect(started).toEqual([0, 1, 2, 3, 4]);
    for (const s of [steps[3]!, steps[4]!]) s.finish();
    await new Promise(setImmediate);
    expect(started).toEqual([0, 1, 2, 3, 4, 9]);
    late.finish();
    expect(await lateResult).toBe(9);
    await Promise.all(results);
    expect(gate.inFlight).toBe(0);
    expect(gate.queued).toBe(0);
  });

  it('refuses past `maxWaiting` with BrokerUnavailableError and keeps serving the others', async () => {
    const gate = new InFlightGate('history reads', 1, 2);
    const started: number[] = [];
    const steps = Array.from({ length: 3 }, (_, n) => controlled(started, n));
    const results = steps.map((s) => gate.run(s.step));
    const refused = gate.run(() => Promise.resolve(-1));
    await expect(refused).rejects.toBeInstanceOf(BrokerUnavailableError);
    await expect(refused).rejects.toThrow(/2 history reads already wait/);
    for (const s of steps) s.finish();
    expect(await Promise.all(results)).toEqual([0, 1, 2]);
    expect(gate.inFlight).toBe(0);
  });

  it('frees the slot of a step that fails, sync or async', async () => {
    const gate = new InFlightGate('publish calls', 1, 5);
    const syncThrow = gate.run(() => {
      throw new Error('link down');
    });
    const asyncReject = gate.run(() => Promise.reject(new Error('timeout')));
    await expect(syncThrow).rejects.toThrow('link down');
    await expect(asyncReject).rejects.toThrow('timeout');
    expect(await gate.run(() => Promise.resolve('ok'))).toBe('ok');
    expect(gate.inFlight).toBe(0);
  });

  it('with no bound (Infinity) starts every step at once', async () => {
    const gate = new InFlightGate('publish calls', Infinity, 0);
    const started: number[] = [];
    const steps = Array.from({ length: 100 }, (_, n) => controlled(started, n));
    const results = steps.map((s) => gate.run(s.step));
    expect(started).toHaveLength(100);
    expect(gate.queued).toBe(0);
    for (const s of steps) s.finish();
    expect(await Promise.all(results)).toHaveLength(100);
    expect(() => new InFlightGate('x', 1.5, 0)).toThrow(RangeError);
  });
});
