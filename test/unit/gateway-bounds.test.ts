/**
 * The gateway's small bounded structures, each driven past its limit:
 * handshake-rate buckets, publish waiters, connection waiters, the per-user
 * mutex's entries, pending critical acks, and the registry's slots.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CriticalAcks } from '../../src/gateway/critical-acks.js';
import {
  DeliveryWaiters,
  type WaitRefusal,
  type Waiter,
} from '../../src/gateway/delivery-waiters.js';
import { KeyedMutex } from '../../src/gateway/keyed-mutex.js';
import { KeyedWaiters } from '../../src/gateway/keyed-waiters.js';
import {
  ConnectionRegistry,
  type Reservation,
  type ReserveRefusal,
} from '../../src/gateway/registry.js';
import { KeyedRateLimiter, TokenBucket } from '../../src/gateway/token-bucket.js';

describe('TokenBucket and KeyedRateLimiter', () => {
  it('allows the burst, then refuses until tokens come back with time', () => {
    const bucket = new TokenBucket(10, 3, 0);
    expect([bucket.take(0), bucket.take(0), bucket.take(0), bucket.take(0)]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    expect(bucket.secondsUntilToken(0)).toBe(1);
    expect(bucket.take(100)).toBe(true); // 0.1 s at 10/s gives one token back
    expect(bucket.take(100)).toBe(false);
  });

  it('keeps at most maxKeys buckets: full ones are forgotten first, then the oldest', () => {
    const limiter = new KeyedRateLimiter(1, 1, 3);
    expect(limiter.take('a', 0)).toBe(0);
    expect(limiter.take('b', 0)).toBe(0);
    expect(limiter.take('c', 0)).toBe(0);
    expect(limiter.take('c', 0)).toBeGreaterThan(0); // c is empty now
    // Past the bound at t=0: every bucket is busy, so the oldest (a) goes.
    expect(limiter.take('d', 0)).toBe(0);
    expect(limiter.size).toBe(3);
    expect(limiter.take('a', 0)).toBe(0); // a was forgotten, so it starts full again
    // Later, full buckets are the first to go and busy ones are kept.
    expect(limiter.take('e', 10_000)).toBe(0);
    expect(limiter.size).toBeLessThanOrEqual(3);
  });
});

describe('DeliveryWaiters', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  function waiter(added: Waiter | WaitRefusal): Waiter {
    if (typeof added === 'string') throw new Error(`refused: ${added}`);
    return added;
  }

  it('refuses a waiter past maxWaiters and frees slots when they settle', async () => {
    const waiters = new DeliveryWaiters(2, 10);
    const a = waiter(waiters.add('u', 'ev1', false, 1000));
    waiter(waiters.add('v', 'ev2', false, 1000));
    expect(waiters.add('w', 'ev3', false, 1000)).toBe('node');
    await vi.advanceTimersByTimeAsync(1000);
    await a.settled;
    expect(waiters.size).toBe(0);
    expect(waiters.userCount).toBe(0);
    expect(typeof waiters.add('w', 'ev3', false, 1000)).toBe('object');
  });

  it('refuses a user past maxPerUser while other users still wait, and frees it on cancel', () => {
    const waiters = new DeliveryWaiters(10, 2);
    const first = waiter(waiters.add('u', 'ev1', false, 1000));
    waiter(waiters.add('u', 'ev2', false, 1000));
    expect(waiters.add('u', 'ev3', false, 1000)).toBe('user');
    expect(waiters.sizeOf('u')).toBe(2);
    waiter(waiters.add('v', 'ev1', false, 1000));
    first.cancel();
    first.cancel(); // twice: counted once
    expect(waiters.sizeOf('u')).toBe(1);
    waiter(waiters.add('u', 'ev3', false, 1000));
    expect(waiters.add('u', 'ev4', false, 1000)).toBe('user');
    expect(waiters.size).toBe(3);
  });

  it('counts writes for plain events and acks for critical ones', () => {
    const waiters = new DeliveryWaiters(10, 10);
    const plain = waiter(waiters.add('u', 'p', false, 1000));
    const critical = waiter(waiters.add('u', 'c', true, 1000));
    const base = { userId: 'u', seq: 1, epoch: 'e', awaitedBy: 'n', connections: 1 };
    waiters.report({ ...base, id: 'p', kind: 'written' });
    waiters.report({ ...base, id: 'c', kind: 'written' });
    waiters.report({ ...base, id: 'c', kind: 'acked' });
    waiters.report({ ...base, id: 'other', kind: 'written' });
    expect(plain.delivered).toBe(1);
    expect(critical.delivered).toBe(1);
    plain.cancel();
    critical.cancel();
    expect(waiters.size).toBe(0);
  });
});

describe('KeyedWaiters', () => {
  it('answers at once with the timeout value past maxWaiters', async () => {
    const waiters = new KeyedWaiters<boolean>(1);
    const first = waiters.wait('alice', 10_000);
    expect(await waiters.wait('bob', 10_000)).toBe(false);
    waiters.resolve('alice', true);
    expect(await first).toBe(true);
    expect(waiters.size).toBe(0);
  });
});

describe('KeyedMutex', () => {
  it('serializes one key, runs keys independently, and forgets settled keys', async () => {
    const mutex = new KeyedMutex();
    const order: string[] = [];
    let releaseFirst!: () => void;
    const first = mutex.run('alice', async () => {
      await new Promise<void>((r) => (releaseFirst = r));
      order.push('alice-1');
    });
    const second = mutex.run('alice', async () => void order.push('alice-2'));
    await mutex.run('bob', async () => void order.push('bob'));
    expect(order).toEqual(['bob']);
    releaseFirst();
    await Promise.all([first, second]);
    expect(order).toEqual(['bob', 'alice-1', 'alice-2']);
    // The entries go once the promise callbacks after the last step have run.
    await new Promise(setImmediate);
    expect(mutex.size).toBe(0);
  });

  it('makes a run of the same key started inside a starting step wait for that step', async () => {
    const mutex = new KeyedMutex();
    const order: string[] = [];
    let inner!: Promise<void>;
    const outer = mutex.run('alice', () => {
      // Synchronous part of the first step (it starts at once): the key is already held.
      inner = mutex.run('alice', async () => void order.push('inner'));
      order.push('outer, synchronous part');
      return Promise.resolve().then(() => void order.push('outer, settled'));
    });
    await Promise.all([outer, inner]);
    expect(order).toEqual(['outer, synchronous part', 'outer, settled', 'inner']);
    await new Promise(setImmediate);
    expect(mutex.size).toBe(0);
  });
});

describe('CriticalAcks', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('times out the oldest unacked event and refuses past maxPending', async () => {
    const timedOut: number[] = [];
    const acks = new CriticalAcks(100, 2, (seq) => timedOut.push(seq));
    expect(acks.sent(1, Date.now())).toBe(true);
    expect(acks.sent(2, Date.now())).toBe(true);
    expect(acks.sent(3, Date.now())).toBe(false);
    acks.ackedUpTo(1, Date.now());
    expect(acks.pending).toBe(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(timedOut).toEqual([2]);
    acks.stop();
  });
});

describe('ConnectionRegistry', () => {
  const limits = {
    maxConnectionsPerUser: 2,
    maxConnectionsPerIp: 3,
    maxConnections: 4,
    evictOldest: false,
  };
  const conn = (id: string, userId: string, ip: string) => ({
    id,
    userId,
    ip,
    connectedAt: Date.now(),
  });

  it('refuses past each limit and releases every slot and entry', () => {
    const registry = new ConnectionRegistry<ReturnType<typeof conn>>();
    const r1 = registry.reserve('alice', '1.1.1.1', limits);
    const r2 = registry.reserve('alice', '1.1.1.1', limits);
    expect(registry.reserve('alice', '2.2.2.2', limits)).toBe('user_limit');
    const r3 = registry.reserve('bob', '1.1.1.1', limits);
    expect(registry.reserve('carol', '1.1.1.1', limits)).toBe('ip_limit');
    const r4 = registry.reserve('carol', '2.2.2.2', limits);
    expect(registry.reserve('dave', '3.3.3.3', limits)).toBe('node_limit');
    const slot = (r: Reservation | ReserveRefusal): Reservation => {
      if (typeof r === 'string') throw new Error(`refused: ${r}`);
      return r;
    };
    const [a1, a2, b1, c1] = [
      conn('a1', 'alice', '1.1.1.1'),
      conn('a2', 'alice', '1.1.1.1'),
      conn('b1', 'bob', '1.1.1.1'),
      conn('c1', 'carol', '2.2.2.2'),
    ];
    registry.attach(slot(r1), a1);
    registry.attach(slot(r2), a2);
    registry.attach(slot(r3), b1);
    registry.release(slot(r4)); // carol's upgrade never happened
    expect(registry.connectionCount).toBe(3);
    expect(registry.userCount).toBe(2);
    expect(registry.remove(a1)).toBe(1);
    expect(registry.remove(a2)).toBe(0);
    expect(registry.remove(b1)).toBe(0);
    expect(registry.remove(c1)).toBe(0); // never attached: nothing to remove
    expect(registry.slotCount).toBe(0);
    expect(registry.entryCount).toEqual({ users: 0, ips: 0 });
  });
});
