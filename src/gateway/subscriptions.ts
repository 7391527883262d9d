/**
 * This node's subscriptions in the stream engine: one per user while the node
 * holds a connection or an AG-UI stream (`RunListeners`) of that user, taken
 * before the first one's history read (so nothing published meanwhile is
 * missed) and dropped after the last one closed. Steps of one user run one at a time (`KeyedMutex`),
 * and each looks at the registry when it runs, so a close racing an open
 * ends with the subscription the registry calls for.
 *
 * Bounded by the users of the registry (its connection limits).
 */
import type { StreamEngine } from '../broker/stream-engine.js';
import type { BrokerFailures } from './broker-failures.js';
import type { Connection } from './connection.js';
import { KeyedMutex } from './keyed-mutex.js';
import type { ConnectionRegistry } from './registry.js';

export class Subscriptions {
  private readonly subscribed = new Set<string>();
  private readonly locks = new KeyedMutex();

  constructor(
    private readonly streams: StreamEngine,
    private readonly registry: ConnectionRegistry<Connection>,
    private readonly failures: BrokerFailures,
    /** The node's other followers of users' streams (AG-UI streams). */
    private readonly listeners: { countOf(userId: string): number } = { countOf: () => 0 },
  ) {}

  private holders(userId: string): number {
    return this.registry.countOf(userId) + this.listeners.countOf(userId);
  }

  /** The user has a connection or stream here: subscribe if not yet. Rejects when the engine fails. */
  acquire(userId: string): Promise<void> {
    return this.locks.run(userId, async () => {
      if (this.subscribed.has(userId) || this.holders(userId) === 0) return;
      await this.streams.subscribe(userId);
      this.subscribed.add(userId);
    });
  }

  /** The user's last connection or stream here may be gone: unsubscribe if so (failures are logged). */
  release(userId: string): void {
    void this.locks
      .run(userId, async () => {
        if (this.holders(userId) > 0 || !this.subscribed.has(userId)) return;
        this.subscribed.delete(userId);
        await this.streams.unsubscribe(userId);
      })
      .catch((error: unknown) =>
        this.failures.background('unsubscribe', error, 'unsubscribe failed', { userId }),
      );
  }

  get size(): number {
    return this.subscribed.size;
  }
}
