/**
 * Publishes that wait for delivery (`?wait=ms`, PROTOCOL.md section 5): the
 * answer to the race where an agent starts before the user's socket is open.
 * A waiter is registered under the event id *before* the publish, so a
 * delivery that happens during the publish itself is not missed; it resolves
 * at the first delivery report (a write; an ack for critical events) or when
 * its time is up, and counts every report that arrived by then.
 *
 * Bounded: at most `maxWaiters` at once on the node and `maxPerUser` per
 * user (`limits.maxPendingWaits`, `limits.maxPendingWaitsPerUser`); past
 * either, `add` says which, and the publisher refuses the publish (429
 * `too_many_waits`) before anything is stored. A waiter holds its promise and
 * timer for up to 30 s, so without the bounds a publisher could pin memory.
 */
import type { DeliveryReport } from '../broker/broker.js';

export interface Waiter {
  /** Connections that received (critical: acked) the event so far. */
  delivered: number;
  /** Resolves at the first delivery or at the deadline. */
  readonly settled: Promise<void>;
  cancel(): void;
}

interface Entry extends Waiter {
  critical: boolean;
  resolve(): void;
  timer: ReturnType<typeof setTimeout>;
}

function key(userId: string, eventId: string): string {
  return `${userId}\u0000${eventId}`;
}

/** Which bound refused a waiter. */
export type WaitRefusal = 'node' | 'user';

export class DeliveryWaiters {
  private readonly waiters = new Map<string, Set<Entry>>();
  /** Pending waiters per user (an entry leaves with the user's last waiter). */
  private readonly perUser = new Map<string, number>();
  private count = 0;

  constructor(
    private readonly maxWaiters: number,
    private readonly maxPerUser: number,
  ) {}

  /** Registers a waiter, or says which bound refused it. */
  add(userId: string, eventId: string, critical: boolean, timeoutMs: number): Waiter | WaitRefusal {
    if (this.count >= this.maxWaiters) return 'node';
    const ofUser = this.perUser.get(userId) ?? 0;
    if (ofUser >= this.maxPerUser) return 'user';
    const k = key(userId, eventId);
    let resolve!: () => void;
    const settled = new Promise<void>((r) => (resolve = r));
    const entry: Entry = {
      delivered: 0,
      critical,
      settled,
      resolve,
      timer: setTimeout(() => remove(), timeoutMs),
      cancel: () => remove(),
    };
    const remove = (): void => {
      clearTimeout(entry.timer);
      const set = this.waiters.get(k);
      if (set?.delete(entry)) {
        this.count--;
        if (set.size === 0) this.waiters.delete(k);
        const left = (this.perUser.get(userId) ?? 1) - 1;
        if (left === 0) this.perUser.delete(userId);
        else this.perUser.set(userId, left);
      }
      entry.resolve();
    };
    entry.timer.unref?.();
    let set = this.waiters.get(k);
    if (!set) this.waiters.set(k, (set = new Set()));
    set.add(entry);
    this.count++;
    this.perUser.set(userId, ofUser + 1);
    return entry;
  }

  report(report: DeliveryReport): void {
    const set = this.waiters.get(key(report.userId, report.id));
    if (!set) return;
    for (const entry of set) {
      const counts = entry.critical ? report.kind === 'acked' : report.kind === 'written';
      if (!counts) continue;
      entry.delivered += report.connections;
      // Resolve now; reports arriving in the same tick still add to `delivered`
      // until the waiting publish reads it and cancels.
      entry.resolve();
    }
  }

  get size(): number {
    return this.count;
  }

  /** Pending waiters of one user. */
  sizeOf(userId: string): number {
    return this.perUser.get(userId) ?? 0;
  }

  /** Users with a pending waiter (never more than `size`). */
  get userCount(): number {
    return this.perUser.size;
  }
}
