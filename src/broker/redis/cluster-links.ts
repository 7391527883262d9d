/**
 * The links of a Redis engine node on a Redis Cluster (`RedisBroker({ cluster })`):
 * - user steps (publish, read) on the master of the user's slot, with that
 *   master's identity for RUN_GUARD (`shard-watch.ts`);
 * - a user's live events on sharded pub/sub: the publish script SPUBLISHes
 *   on the user's channel, which hashes to the user's slot, and this node
 *   SSUBSCRIBEs it on that shard (`shard-subscriber.ts`);
 * - the bus channels (broadcast, control, node) on plain pub/sub, which a
 *   cluster carries to every node: one subscriber link to any master
 *   (`cluster-bus-link.ts`; ioredis's own cluster subscriber reselects its
 *   node at times without waiting for SUBSCRIBE, and a broadcast was lost);
 * - everything else (acks, presence, runs, node loads, bus PUBLISHes) on an
 *   ioredis `Cluster` client, which routes each single-key command by its slot.
 *
 * Health: not ready while the `Cluster` client is not ready, the bus link is
 * not subscribed, or while a
 * channel this node follows is not held on its shard's master (that user's
 * live events cannot arrive). A shard that is down and that no followed user
 * needs does not fail readiness; its steps fail with `BrokerUnavailableError`.
 */
import { Cluster, type Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { BrokerUnavailableError, type BrokerHealth } from '../broker.js';
import { slotOf } from './cluster-slots.js';
import { HealthReporter, type EngineLinks } from './engine-links.js';
import { errorMessage, reconnectDelay, type LinkListener } from './links.js';
import { DEFINITIONS, type ScriptedRedis } from './scripts.js';
import { ClusterBusLink } from './cluster-bus-link.js';
import { ShardSubscriber } from './shard-subscriber.js';
import { ShardWatch, type ShardStats, type UserStep } from './shard-watch.js';

/** What a cluster run says of persistence: no single run, and a failover is never proven. */
const CLUSTER_PERSISTENCE = {
  proven: false,
  summary:
    'redis cluster: replication is asynchronous, so a failover or restart of a shard moves ' +
    'its streams to a new epoch (gap: true, retained history kept)',
};

/** The engine's scripts with live events on sharded pub/sub (the channel is in the user's slot). */
const CLUSTER_DEFINITIONS = Object.fromEntries(
  Object.entries(DEFINITIONS).map(([name, definition]) => {
    const lua = definition.lua.replaceAll("redis.call('PUBLISH',", "redis.call('SPUBLISH',");
    return [name, { ...definition, lua }];
  }),
);
if (!CLUSTER_DEFINITIONS.agentsocketPublish!.lua.includes("redis.call('SPUBLISH',")) {
  throw new Error('cluster-links: the publish script no longer PUBLISHes its live event');
}

function defineClusterScripts(client: Redis): ScriptedRedis {
  for (const [name, definition] of Object.entries(CLUSTER_DEFINITIONS)) {
    client.defineCommand(name, definition);
  }
  // defineCommand adds the methods at run time; ioredis cannot type them.
  return client as ScriptedRedis;
}

export interface ClusterLinksOptions {
  /** Seed node URLs (`redis://[user:password@]host:port`); one that answers is enough. */
  urls: string[];
  nodeId: string;
  commandTimeoutMs: number;
  logger: Logger | undefined;
}

/** Host, port and credentials of seed URLs (the same credentials and TLS for every node). */
export function parseSeeds(urls: readonly string[]): {
  seeds: { host: string; port: number }[];
  auth: Pick<RedisOptions, 'username' | 'password' | 'tls'>;
} {
  const seeds: { host: string; port: number }[] = [];
  let auth: Pick<RedisOptions, 'username' | 'password' | 'tls'> = {};
  for (const url of urls) {
    const parsed = new URL(url);
    if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
      throw new TypeError('RedisBroker: cluster URLs must start with redis:// or rediss://');
    }
    if (parsed.pathname !== '' && parsed.pathname !== '/' && parsed.pathname !== '/0') {
      throw new TypeError('RedisBroker: a Redis Cluster has only database 0');
    }
    seeds.push({ host: parsed.hostname, port: Number(parsed.port || 6379) });
    auth = {
      ...(parsed.username !== '' ? { username: decodeURIComponent(parsed.username) } : {}),
      ...(parsed.password !== '' ? { password: decodeURIComponent(parsed.password) } : {}),
      ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
    };
  }
  return { seeds, auth };
}

export class ClusterLinks implements EngineLinks {
  private readonly cluster: Cluster;
  private readonly watch: ShardWatch;
  private readonly subscriber: ShardSubscriber;
  private readonly redisOptions: RedisOptions;
  private bus: ClusterBusLink | undefined;
  private listener: LinkListener | undefined;
  private clusterState = 'connecting';
  private readonly healthReporter = new HealthReporter(() => this.health());
  private closed = false;

  constructor(private readonly options: ClusterLinksOptions) {
    const { seeds, auth } = parseSeeds(options.urls);
    const redisOptions: RedisOptions = (this.redisOptions = {
      ...auth,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: options.commandTimeoutMs,
      connectTimeout: Math.max(options.commandTimeoutMs, 1_000),
    });
    this.cluster = new Cluster(seeds, {
      lazyConnect: true,
      enableOfflineQueue: false,
      clusterRetryStrategy: reconnectDelay,
      retryDelayOnMoved: 0,
      retryDelayOnTryAgain: 20,
      redisOptions: { ...redisOptions, connectionName: `agentsocket-${options.nodeId}` },
    });
    for (const [name, definition] of Object.entries(CLUSTER_DEFINITIONS)) {
      this.cluster.defineCommand(name, definition);
    }
    this.watch = new ShardWatch({
      seeds,
      redisOptions: { ...redisOptions, connectionName: `agentsocket-${options.nodeId}-shard` },
      defineScripts: defineClusterScripts,
      scripts: Object.values(CLUSTER_DEFINITIONS).map((d) => d.lua),
      logger: options.logger,
    });
    this.subscriber = new ShardSubscriber(
      this.watch,
      { ...redisOptions, connectionName: `agentsocket-${options.nodeId}-ssub` },
      {
        message: (channel, message) => {
          if (!this.closed) this.listener?.message(channel, message);
        },
        restored: (channels) => {
          if (!this.closed) this.listener?.restored(channels);
        },
        changed: () => this.reportHealth(),
      },
      options.logger,
    );
  }

  /** Connects the cluster client and reads the slot table; resolves whether or not the cluster answered. */
  async start(listener: LinkListener): Promise<void> {
    this.listener = listener;
    const { logger } = this.options;
    for (const event of ['connect', 'ready', 'close', 'reconnecting', 'end'] as const) {
      this.cluster.on(event, () => {
        this.clusterState = event === 'connect' ? 'connecting' : event;
        this.reportHealth();
      });
    }
    let lastError = '';
    this.cluster.on('error', (error: unknown) => {
      const message = errorMessage(error);
      if (this.closed || message === lastError) return;
      lastError = message;
      logger?.warn({ err: message }, 'redis cluster: client error');
    });
    // The bus channels (plain pub/sub, no hash tag) on their own link.
    this.bus = new ClusterBusLink(this.watch, {
      channels: listener.channels().filter((channel) => !channel.includes('{')),
      redisOptions: {
        ...this.redisOptions,
        connectionName: `agentsocket-${this.options.nodeId}-bus`,
      },
      message: (channel, message) => {
        if (!this.closed) listener.message(channel, message);
      },
      changed: () => this.reportHealth(),
      logger,
    });
    // The first attempt of each, bounded: a cluster unreachable at boot is
    // not a failure to start (the client keeps reconnecting).
    const firstAttempt = Math.max(this.options.commandTimeoutMs, 1_000) * 2;
    const attempts = await Promise.allSettled([
      withDeadline(this.cluster.connect(), firstAttempt),
      withDeadline(
        this.watch.start({
          failedOver: (isAffected) => {
            const channels = listener.channels().filter((c) => isAffected(slotOf(c)));
            if (channels.length > 0) listener.restored(channels);
          },
          tableChanged: () => this.subscriber.reconcile(),
        }),
        firstAttempt,
      ),
    ]);
    for (const attempt of attempts) {
      if (attempt.status === 'rejected') {
        logger?.warn(
          { err: errorMessage(attempt.reason) },
          'redis cluster: unreachable at start, reconnecting',
        );
      }
    }
    await withDeadline(this.bus.start(), firstAttempt).catch(() => undefined);
    this.reportHealth();
  }

  get command(): ScriptedRedis {
    if (this.closed) throw new BrokerUnavailableError('redis broker closed');
    if (this.clusterState !== 'ready') {
      throw new BrokerUnavailableError(`redis unavailable: cluster client ${this.clusterState}`);
    }
    // The Cluster client has the same commands as a single-node one.
    return this.cluster as unknown as ScriptedRedis;
  }

  userStep<T>(userId: string, step: UserStep<T>): Promise<T> {
    if (this.closed) throw new BrokerUnavailableError('redis broker closed');
    return this.watch.step(slotOf(`{u:${userId}}`), step);
  }

  /** A script's keys must share a slot: users of one slot may share a call. */
  stepGroup(userId: string): string {
    return String(slotOf(`{u:${userId}}`));
  }

  /** Not held on a cluster (`EngineLinks.holdCommands`). */
  holdCommands(): void {}

  releaseHeld(): void {}

  follow(channel: string): Promise<void> {
    if (this.closed) throw new BrokerUnavailableError('redis broker closed');
    return this.subscriber.follow(channel);
  }

  async unfollow(channel: string): Promise<void> {
    if (this.closed) return;
    await this.subscriber.unfollow(channel);
  }

  get lastRun(): undefined {
    return undefined;
  }

  /** Each shard's state and what this node saw of it (metrics). */
  shards(): ShardStats[] {
    return this.watch.stats();
  }

  health(): BrokerHealth {
    if (this.closed) return { healthy: false, reason: 'redis broker closed' };
    const persistence = CLUSTER_PERSISTENCE;
    const shards = this.watch.stats();
    if (this.clusterState !== 'ready') {
      const reason = `redis cluster client ${this.clusterState}`;
      return { healthy: false, reason, persistence, shards };
    }
    if (this.bus?.ready !== true) {
      const reason = 'redis cluster: bus link (broadcast, control) not subscribed';
      return { healthy: false, reason, persistence, shards };
    }
    if (!this.subscriber.healthy()) {
      const reason = 'redis cluster: a followed user is on a shard this node cannot reach';
      return { healthy: false, reason, persistence, shards };
    }
    return { healthy: true, persistence, shards };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([
      this.subscriber.close(),
      this.bus?.close(),
      this.watch.close(),
      this.cluster.quit().catch(() => this.cluster.disconnect()),
    ]);
    this.reportHealth();
  }

  private reportHealth(): void {
    this.healthReporter.report(this.listener);
  }
}

/** `promise`, or a rejection once `ms` passed (the promise itself goes on). */
function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  promise.catch(() => undefined);
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
