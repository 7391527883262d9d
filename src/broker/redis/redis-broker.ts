/**
 * The Broker on Redis: any number of gateway nodes share user streams through
 * one Redis (or a Redis Cluster: every key of a user carries the hash tag
 * `{u:<userId>}`). Redis is the engine; there is no cluster protocol here.
 * This class composes the parts, each in its own file:
 * - `links.ts`: the command and subscriber links, health, error mapping, and
 *   the Redis run and its persistence (`persistence.ts`);
 * - `stream.ts`: the stream engine (publish, history, acks, followers);
 * - `bus.ts`: broadcasts, operator commands, delivery reports;
 * - `presence.ts`: the connections directory and node loads;
 * - `scripts.ts`: the Lua scripts (`defineCommand`); `wire.ts`: decoding;
 *   `keys.ts`: the key layout.
 *
 * See docs/redis.md for the key layout and the persistence trade-offs.
 *
 * @example
 * ```ts
 * import { RedisBroker } from 'agentsocket/redis';
 * const broker = new RedisBroker({ url: 'redis://127.0.0.1:6379' });
 * ```
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { EncodedEvent } from '../../protocol/event-frame.js';
import type { Broker, BrokerHandlers, BrokerHealth } from '../broker.js';
import type { ControlMessage, DeliveryReport } from '../cluster-bus.js';
import type { ConnectionRecord } from '../presence-store.js';
import type { RunSnapshot } from '../../runs/run-types.js';
import { MIN_RUN_SNAPSHOT_MAX_BYTES } from '../../runs/run-snapshot.js';
import { positiveInteger } from '../../options/validators.js';
import { HISTORY_DEFAULTS, RUN_DEFAULTS } from '../stream-defaults.js';
import type { HistoryRead, PublishOptions, PublishOutcome, ReadCursor } from '../stream-engine.js';
import { RedisBus } from './bus.js';
import { RedisKeys } from './keys.js';
import { ClusterLinks } from './cluster-links.js';
import type { EngineLinks } from './engine-links.js';
import { RedisLinks, type LinkListener } from './links.js';
import type { ShardStats } from './shard-watch.js';
import type { RedisRun } from './persistence.js';
import { RedisPresence } from './presence.js';
import { RedisRuns } from './runs.js';
import { MAX_BATCH_BYTES, MAX_BATCH_EVENTS } from './publish-batch.js';
import { NODE_ID_PATTERN, RedisStream } from './stream.js';

export { reconnectDelay } from './links.js';

export interface RedisBrokerOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` for TLS. This or `cluster`. */
  url?: string;
  /**
   * Seed nodes of a Redis Cluster (7.0 or later: sharded pub/sub), instead of
   * `url`: `['redis://10.0.0.1:6379', …]`; one that answers is enough, the
   * others are found. See docs/redis.md, "Redis Cluster".
   */
  cluster?: readonly string[];
  /** Prefix of every key and channel. Default `'agentsocket'`. */
  keyPrefix?: string;
  /** Events kept per user. Default 1000 (`HISTORY_DEFAULTS`). */
  historySize?: number;
  /** How long an event stays in history, and the TTL of a user's keys. Default 3_600_000 (1 h). */
  historyTtlMs?: number;
  /** This node's id (`[A-Za-z0-9._:-]{1,64}`). Default: random `n_…`. */
  nodeId?: string;
  /** A command that gets no answer within this rejects with `BrokerUnavailableError`. Default 2000. */
  commandTimeoutMs?: number;
  /** Users this node may follow at once; past it `subscribe` rejects. Default 100_000. */
  maxSubscriptions?: number;
  /** Live messages queued per followed user while it catches up. Default 1000. */
  maxPendingPerUser?: number;
  logger?: Logger;
  /** Lifetime of a run's keys (state, log) after its last event, in ms. Default 24 h (`RUN_DEFAULTS`). */
  runTtlMs?: number;
  /** Size cap of one run snapshot's JSON, in bytes (at least 16 KiB). Default 4 MiB. */
  runSnapshotMaxBytes?: number;
  /** Runs kept per user; a new run drops the least recently updated one. Default 100. */
  maxRunsPerUser?: number;
  /** The clock for event `ts`, history expiry and presence deadlines. Default `Date.now`. */
  clock?: () => number;
}

const KEY_PREFIX_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;
/**
 * The meta hash lives 24 × `historyTtlMs` past its last use (publish, read,
 * ack), capped at 30 days unless the history itself lives longer.
 */
const MAX_META_TTL_MS = 30 * 24 * 3_600_000;

/** `positiveInteger` of `value`, or `fallback` when it is not given. */
function positiveOption(name: string, value: number | undefined, fallback: number): number {
  return positiveInteger(`RedisBroker: ${name}`, value ?? fallback);
}

export class RedisBroker implements Broker, LinkListener {
  readonly nodeId: string;
  private readonly links: EngineLinks;
  private readonly stream: RedisStream;
  private readonly runs: RedisRuns;
  private readonly bus: RedisBus;
  private readonly presence: RedisPresence;
  private readonly logger: Logger | undefined;
  private handlers: BrokerHandlers | undefined;
  private closed = false;

  constructor(options: RedisBrokerOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('RedisBroker: options are required');
    }
    const cluster = options.cluster;
    if (cluster !== undefined) {
      if (options.url !== undefined) {
        throw new TypeError(
          'RedisBroker: give url (one Redis) or cluster (Redis Cluster), not both',
        );
      }
      if (
        !Array.isArray(cluster) ||
        cluster.length === 0 ||
        !cluster.every((url) => typeof url === 'string' && /^rediss?:\/\//.test(url))
      ) {
        throw new TypeError(
          'RedisBroker: cluster must be a non-empty list of redis:// or rediss:// URLs',
        );
      }
    } else if (typeof options.url !== 'string' || !/^rediss?:\/\//.test(options.url)) {
      throw new TypeError('RedisBroker: url must start with redis:// or rediss://');
    }
    const prefix = options.keyPrefix ?? 'agentsocket';
    if (!KEY_PREFIX_PATTERN.test(prefix)) {
      throw new TypeError('RedisBroker: keyPrefix must be 1-64 characters of [A-Za-z0-9._:-]');
    }
    const keys = new RedisKeys(prefix);
    const historySize = positiveOption(
      'historySize',
      options.historySize,
      HISTORY_DEFAULTS.historySize,
    );
    const historyTtlMs = positiveOption(
      'historyTtlMs',
      options.historyTtlMs,
      HISTORY_DEFAULTS.historyTtlMs,
    );
    const commandTimeoutMs = positiveOption('commandTimeoutMs', options.commandTimeoutMs, 2_000);
    const maxSubscriptions = positiveOption('maxSubscriptions', options.maxSubscriptions, 100_000);
    const maxPendingPerUser = positiveOption('maxPendingPerUser', options.maxPendingPerUser, 1_000);
    const runTtlMs = positiveOption('runTtlMs', options.runTtlMs, RUN_DEFAULTS.runTtlMs);
    const runSnapshotMaxBytes = positiveOption(
      'runSnapshotMaxBytes',
      options.runSnapshotMaxBytes,
      RUN_DEFAULTS.runSnapshotMaxBytes,
    );
    if (runSnapshotMaxBytes < MIN_RUN_SNAPSHOT_MAX_BYTES) {
      throw new RangeError(
        `RedisBroker: runSnapshotMaxBytes must be at least ${MIN_RUN_SNAPSHOT_MAX_BYTES}`,
      );
    }
    const maxRunsPerUser = positiveOption(
      'maxRunsPerUser',
      options.maxRunsPerUser,
      RUN_DEFAULTS.maxRunsPerUser,
    );
    const nodeId = options.nodeId ?? `n_${randomBytes(6).toString('hex')}`;
    if (!NODE_ID_PATTERN.test(nodeId)) {
      throw new TypeError('RedisBroker: nodeId must be 1-64 characters of [A-Za-z0-9._:-]');
    }
    this.nodeId = nodeId;
    this.logger = options.logger;
    const clock = options.clock ?? Date.now;
    this.links =
      cluster !== undefined
        ? new ClusterLinks({ urls: [...cluster], nodeId, commandTimeoutMs, logger: this.logger })
        : new RedisLinks({ url: options.url!, nodeId, commandTimeoutMs, logger: this.logger });
    this.stream = new RedisStream(this.links, keys, {
      historySize,
      historyTtlMs,
      runTtlMs,
      maxRunsPerUser,
      metaTtlMs: Math.max(historyTtlMs, Math.min(historyTtlMs * 24, MAX_META_TTL_MS)),
      maxSubscriptions,
      maxPendingPerUser,
      clock,
      logger: this.logger,
      batch: { maxEvents: MAX_BATCH_EVENTS, maxBytes: MAX_BATCH_BYTES },
      boundInFlight: cluster === undefined,
      declareEveryKey: cluster !== undefined,
    });
    this.runs = new RedisRuns(this.links, keys, {
      runTtlMs,
      runSnapshotMaxBytes,
      logger: this.logger,
    });
    this.stream.onLongRunLog = (userId, runId, length) =>
      this.runs.onLogLength(userId, runId, length);
    this.bus = new RedisBus(this.links, keys, nodeId, this.logger);
    this.presence = new RedisPresence(this.links, keys, nodeId, clock);
  }

  /**
   * Connects both links and subscribes the shared channels. Resolves once the
   * first connection attempt of each link has settled, whether Redis
   * answered or not: an engine that is unreachable at boot is not a failure
   * to start. Every step rejects with `BrokerUnavailableError` until Redis
   * answers; the node then recovers by itself, without a restart.
   */
  async start(handlers: BrokerHandlers): Promise<void> {
    if (this.handlers !== undefined) throw new Error('RedisBroker: start() was already called');
    this.handlers = handlers;
    this.stream.attach(handlers);
    this.bus.attach(handlers);
    await this.links.start(this);
  }

  // ---- StreamEngine ---------------------------------------------------------

  publish(userId: string, event: EncodedEvent, options?: PublishOptions): Promise<PublishOutcome> {
    return this.stream.publish(userId, event, options);
  }

  readHistory(userId: string, cursor: ReadCursor): Promise<HistoryRead> {
    return this.stream.readHistory(userId, cursor);
  }

  ack(userId: string, seq: number, epoch?: string): Promise<void> {
    return this.stream.ack(userId, seq, epoch);
  }

  subscribe(userId: string): Promise<void> {
    return this.stream.subscribe(userId);
  }

  unsubscribe(userId: string): Promise<void> {
    return this.stream.unsubscribe(userId);
  }

  sweep(): Promise<number> {
    return this.stream.sweep();
  }

  // ---- RunStore -------------------------------------------------------------

  readRun(userId: string, runId: string): Promise<RunSnapshot | null> {
    return this.runs.readRun(userId, runId);
  }

  listRuns(userId: string, limit: number): Promise<RunSnapshot[]> {
    return this.runs.listRuns(userId, limit);
  }

  /** Users followed on this node (bounded by `maxSubscriptions`). */
  get subscriptionCount(): number {
    return this.stream.subscriptionCount;
  }

  // ---- ClusterBus -----------------------------------------------------------

  broadcast(frame: string): Promise<void> {
    return this.bus.broadcast(frame);
  }

  control(message: ControlMessage): Promise<void> {
    return this.bus.control(message);
  }

  reportDelivery(report: DeliveryReport): Promise<void> {
    return this.bus.reportDelivery(report);
  }

  // ---- PresenceStore --------------------------------------------------------

  putConnections(
    userId: string,
    records: readonly ConnectionRecord[],
    ttlMs: number,
  ): Promise<void> {
    return this.presence.putConnections(userId, records, ttlMs);
  }

  listConnections(userId: string): Promise<ConnectionRecord[]> {
    return this.presence.listConnections(userId);
  }

  putNodeLoad(connections: number, ttlMs: number): Promise<void> {
    return this.presence.putNodeLoad(connections, ttlMs);
  }

  nodeLoads(): Promise<Map<string, number>> {
    return this.presence.nodeLoads();
  }

  // ---- Lifecycle and the links' listener -------------------------------------

  health(): BrokerHealth {
    const health = this.links.health();
    const run = this.links.lastRun;
    if (run === undefined) return health;
    const { proven, summary } = run.persistence;
    return { ...health, persistence: { proven, summary } };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stream.close();
    await this.links.close();
  }

  channels(): string[] {
    return [...this.bus.channels(), ...this.stream.channels()];
  }

  resubscribed(): void {
    this.stream.catchUpAll();
  }

  restored(channels: string[]): void {
    this.stream.catchUpChannels(channels);
  }

  /** Redis Cluster: each shard's state, failovers and slot moves seen (empty on one Redis). */
  shards(): ShardStats[] {
    return this.links instanceof ClusterLinks ? this.links.shards() : [];
  }

  message(channel: string, message: string): void {
    if (this.closed) return;
    if (!this.bus.onMessage(channel, message)) this.stream.onMessage(channel, message);
  }

  /**
   * Redis restarted. If it may have lost writes, the next step on each stream
   * moves it to a new epoch (RUN_GUARD, scripts.ts): every followed stream
   * reads its history now, and the ones that moved raise `onResync`.
   */
  runChanged(previous: RedisRun, current: RedisRun): void {
    this.logger?.warn(
      {
        previousRunId: previous.runId,
        runId: current.runId,
        previousPersistenceProven: previous.persistence.proven,
        followed: this.stream.subscriptionCount,
      },
      'redis broker: Redis restarted',
    );
    this.stream.catchUpAll();
  }

  healthChanged(health: BrokerHealth): void {
    try {
      this.handlers?.onHealthChange?.(health.healthy, health.reason);
    } catch (error) {
      this.logger?.error({ err: (error as Error).message }, 'redis broker: a handler threw');
    }
  }
}
