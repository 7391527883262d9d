/**
 * Sharded subscriptions on Redis Cluster: a user's channel `…{u:<id>}:events`
 * lives in the user's slot, the publish script SPUBLISHes on it, and only the
 * shard that owns the slot carries the message. This node SSUBSCRIBEs each
 * followed user's channel on the master that owns it, one subscriber
 * connection per master it needs.
 *
 * When a slot moves (a migration) or its shard fails over, or a subscriber
 * connection drops, the channels are subscribed again on their new owner,
 * awaited, and only then reported (`restored`), so their followers read
 * history after the new subscription holds: whatever was published during
 * the move is in that read, and the follower drops what it already has.
 * A shard that does not answer is retried with a growing delay; until its
 * channels hold again the node is not healthy.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { BrokerUnavailableError } from '../broker.js';
import { slotOf } from './cluster-slots.js';
import type { ShardWatch } from './shard-watch.js';

export interface ShardSubscriberListener {
  message(channel: string, message: string): void;
  /** These channels were subscribed again after a move or a cut: catch their streams up. */
  restored(channels: string[]): void;
  /** Whether every followed channel is held changed. */
  changed(): void;
}

interface Connection {
  address: string;
  client: Redis;
  held: Set<string>;
  ended: boolean;
  /**
   * Settles when the link is ready (or never will be). One promise for every
   * caller: a listener per waiting caller would pile up on the client while
   * hundreds of users subscribe during the connect.
   */
  ready: Promise<void>;
}

export class ShardSubscriber {
  /** Followed channels and their slots. */
  private readonly wanted = new Map<string, number>();
  /** Where each followed channel is held now. */
  private readonly heldBy = new Map<string, Connection>();
  private readonly connections = new Map<string, Connection>();
  private reconciling: Promise<void> | undefined;
  private again = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private attempt = 0;
  private closed = false;

  constructor(
    private readonly watch: ShardWatch,
    private readonly redisOptions: RedisOptions,
    private readonly listener: ShardSubscriberListener,
    private readonly logger: Logger | undefined,
  ) {}

  /** Subscribes `channel` on the master of its slot; rejects while that shard cannot be reached. */
  async follow(channel: string): Promise<void> {
    const slot = slotOf(channel);
    const owner = this.watch.ownerOf(slot);
    if (owner === undefined) {
      throw new BrokerUnavailableError(`redis unavailable: no reachable master for slot ${slot}`);
    }
    const connection = await this.connection(owner.address, owner.host, owner.port);
    await connection.client.ssubscribe(channel);
    // Followed from here on (not before: a subscription in flight is not a
    // lost one, and must not fail readiness). If the slot moved meanwhile,
    // or the connection ended, the channel moves like any other.
    this.wanted.set(channel, slot);
    connection.held.add(channel);
    this.heldBy.set(channel, connection);
    if (connection.ended || this.watch.ownerOf(slot)?.address !== connection.address) {
      this.reconcile();
    }
  }

  async unfollow(channel: string): Promise<void> {
    this.wanted.delete(channel);
    const connection = this.heldBy.get(channel);
    this.heldBy.delete(channel);
    if (connection === undefined || connection.ended) return;
    connection.held.delete(channel);
    await connection.client.sunsubscribe(channel);
  }

  /** True when every followed channel is held on a live connection to its slot's master. */
  healthy(): boolean {
    for (const [channel, slot] of this.wanted) {
      const connection = this.heldBy.get(channel);
      if (connection === undefined || connection.ended) return false;
      if (this.watch.ownerOf(slot)?.address !== connection.address) return false;
    }
    return true;
  }

  /** The table changed or a connection dropped: move every channel that is not where it belongs. */
  reconcile(): void {
    if (this.closed) return;
    if (this.reconciling !== undefined) {
      this.again = true;
      return;
    }
    this.reconciling = this.moveChannels().finally(() => {
      this.reconciling = undefined;
      if (this.again) {
        this.again = false;
        this.reconcile();
      }
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    await Promise.all(
      [...this.connections.values()].map(async ({ client }) => {
        try {
          await client.quit();
        } catch {
          client.disconnect();
        }
      }),
    );
    this.connections.clear();
  }

  private async moveChannels(): Promise<void> {
    const byOwner = new Map<string, { host: string; port: number; channels: string[] }>();
    let missing = false;
    for (const [channel, slot] of this.wanted) {
      const owner = this.watch.ownerOf(slot);
      const held = this.heldBy.get(channel);
      if (owner === undefined) {
        missing = true;
        continue;
      }
      if (held !== undefined && !held.ended && held.address === owner.address) continue;
      const group = byOwner.get(owner.address) ?? {
        host: owner.host,
        port: owner.port,
        channels: [],
      };
      group.channels.push(channel);
      byOwner.set(owner.address, group);
    }
    const restored: string[] = [];
    for (const [address, group] of byOwner) {
      try {
        const connection = await this.connection(address, group.host, group.port);
        // Only channels still followed; each SSUBSCRIBE holds one slot's channels.
        const channels = group.channels.filter((c) => this.wanted.has(c));
        const bySlot = new Map<number, string[]>();
        for (const c of channels) bySlot.set(slotOf(c), [...(bySlot.get(slotOf(c)) ?? []), c]);
        for (const batch of bySlot.values()) await connection.client.ssubscribe(...batch);
        for (const channel of channels) {
          const old = this.heldBy.get(channel);
          if (old !== undefined && old !== connection && !old.ended) {
            old.held.delete(channel);
            old.client.sunsubscribe(channel).catch(() => undefined);
          }
          connection.held.add(channel);
          this.heldBy.set(channel, connection);
          restored.push(channel);
        }
      } catch (error) {
        missing = true;
        this.logger?.warn(
          { shard: address, err: error instanceof Error ? error.message : String(error) },
          'redis cluster: sharded subscribe failed, retrying',
        );
      }
    }
    if (restored.length > 0) {
      this.logger?.info({ channels: restored.length }, 'redis cluster: subscriptions moved');
      this.listener.restored(restored);
    }
    this.listener.changed();
    if (missing && !this.closed) {
      // A shard without a master yet (failover under way): the table is read
      // again and the channels retried, with a growing delay.
      this.attempt++;
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(
        () => {
          void this.watch
            .refresh()
            .catch(() => undefined)
            .then(() => this.reconcile());
        },
        Math.min(1_000, 25 * 2 ** Math.min(this.attempt, 6)),
      );
      this.retryTimer.unref?.();
    } else {
      this.attempt = 0;
    }
  }

  private async connection(address: string, host: string, port: number): Promise<Connection> {
    const existing = this.connections.get(address);
    if (existing !== undefined && !existing.ended) {
      await existing.ready;
      return existing;
    }
    const client = new Redis({
      ...this.redisOptions,
      host,
      port,
      lazyConnect: true,
      autoResubscribe: false,
      retryStrategy: () => null,
    });
    const connection: Connection = {
      address,
      client,
      held: new Set(),
      ended: false,
      ready: client.connect().then(
        () => undefined,
        () => {
          throw new BrokerUnavailableError('redis subscriber link ended');
        },
      ),
    };
    this.connections.set(address, connection);
    client.on('smessage', (channel: string, message: string) => {
      if (!this.closed && this.heldBy.get(channel) === connection) {
        this.listener.message(channel, message);
      }
    });
    client.on('error', (error: unknown) => {
      // A SUNSUBSCRIBE the server sent by itself (the slot left this
      // master) reads as a queue error: drop the connection, so every
      // channel it held is subscribed again where it now belongs.
      if (error instanceof Error && /sunsubscribe/i.test(error.message)) client.disconnect();
    });
    client.on('end', () => {
      connection.ended = true;
      if (this.connections.get(address) === connection) this.connections.delete(address);
      if (this.closed) return;
      this.listener.changed();
      void this.watch
        .refresh()
        .catch(() => undefined)
        .then(() => this.reconcile());
    });
    await connection.ready;
    return connection;
  }
}
