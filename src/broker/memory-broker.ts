/**
 * The in-process Broker (the default engine): one node of an
 * `InProcessCluster`, which holds the streams, the presence store and the
 * bus in this process's memory. Without a `cluster` option the node makes a
 * cluster of its own (one node, the default of `createGateway`); nodes given
 * one cluster share it, as Redis nodes share a Redis.
 *
 * Atomicity and bounds: see `memory-streams.ts`.
 */
import { randomBytes } from 'node:crypto';
import type { EncodedEvent } from '../protocol/event-frame.js';
import {
  BrokerUnavailableError,
  type Broker,
  type BrokerHandlers,
  type BrokerHealth,
} from './broker.js';
import type { ControlMessage, DeliveryReport } from './cluster-bus.js';
import {
  InProcessCluster,
  type BusMember,
  type InProcessClusterOptions,
} from './in-process-cluster.js';
import type { ConnectionRecord } from './presence-store.js';
import type { RunSnapshot } from '../runs/run-types.js';
import type {
  HistoryRead,
  PublishOptions,
  PublishOutcome,
  ReadCursor,
  StreamHandlers,
} from './stream-engine.js';

export interface MemoryBrokerOptions extends InProcessClusterOptions {
  /** This node's id in delivery reports and presence. Default: `n_` and 8 random characters. */
  nodeId?: string;
  /**
   * The cluster this node belongs to. Default: a cluster of its own, made
   * with the other options (which are refused alongside a given cluster:
   * the cluster's own options apply).
   */
  cluster?: InProcessCluster;
}

/** What `stats()` reports, for metrics. */
export interface MemoryBrokerStats {
  /** User streams held. */
  streams: number;
  /** Users this node is subscribed to. */
  subscribedUsers: number;
  /** Events stored in all histories. */
  events: number;
  /** Bytes of the stored payloads (UTF-8). */
  bytes: number;
  /** Streams dropped by the `maxStreams` and `maxTotalBytes` bounds and by `sweep`, since start. */
  evictedStreams: number;
  /** Runs held (snapshots). */
  runs: number;
  /** Bytes of the run snapshots held. */
  runBytes: number;
}

const CLUSTER_OPTIONS = [
  'historySize',
  'historyTtlMs',
  'maxStreams',
  'maxStreamBytes',
  'maxTotalBytes',
  'runTtlMs',
  'runSnapshotMaxBytes',
  'maxRunsPerUser',
  'maxRunBytes',
  'now',
] as const;

function positiveTtl(ttlMs: number): number {
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw new RangeError(`ttlMs must be a positive integer, got ${String(ttlMs)}`);
  }
  return ttlMs;
}

/**
 * @example
 * const broker = new MemoryBroker({ historySize: 500 });
 * await broker.start(handlers);
 * const { seq, epoch } = await broker.publish('alice', encodeEvent(validEvent));
 */
export class MemoryBroker implements Broker, BusMember {
  readonly nodeId: string;
  readonly cluster: InProcessCluster;
  private readonly ownsCluster: boolean;
  private readonly subscribed = new Set<string>();
  private handlers: BrokerHandlers | undefined;
  private closed = false;
  /** What the streams hand this node: made once, forwards to the handlers. */
  private readonly sink: StreamHandlers = {
    onEvent: (userId, epoch, event) => this.handlers?.onEvent(userId, epoch, event),
    onResync: (userId) => this.handlers?.onResync(userId),
  };

  constructor(options: MemoryBrokerOptions = {}) {
    if (options.cluster !== undefined) {
      const clash = CLUSTER_OPTIONS.find((name) => options[name] !== undefined);
      if (clash !== undefined) {
        throw new TypeError(`option ${clash} belongs to the cluster: give it to InProcessCluster`);
      }
    }
    this.cluster = options.cluster ?? new InProcessCluster(options);
    this.ownsCluster = options.cluster === undefined;
    if (
      options.nodeId !== undefined &&
      (typeof options.nodeId !== 'string' || options.nodeId.length === 0)
    ) {
      throw new TypeError('option nodeId must be a non-empty string');
    }
    this.nodeId = options.nodeId ?? `n_${randomBytes(6).toString('base64url')}`;
  }

  async start(handlers: BrokerHandlers): Promise<void> {
    this.assertOpen();
    if (this.handlers) throw new Error('MemoryBroker.start: already started');
    this.cluster.join(this);
    this.handlers = handlers;
  }

  // ---- StreamEngine ---------------------------------------------------------

  async publish(
    userId: string,
    event: EncodedEvent,
    options: PublishOptions = {},
  ): Promise<PublishOutcome> {
    return this.publishNow(userId, event, options);
  }

  publishNow(userId: string, event: EncodedEvent, options: PublishOptions = {}): PublishOutcome {
    this.assertOpen();
    return this.cluster.streams.publish(userId, event, options.awaitedBy, options.runGrammar);
  }

  async readHistory(userId: string, cursor: ReadCursor): Promise<HistoryRead> {
    this.assertOpen();
    return this.cluster.streams.read(userId, cursor);
  }

  async ack(userId: string, seq: number, epoch?: string): Promise<void> {
    this.assertOpen();
    this.cluster.streams.ack(userId, seq, epoch);
  }

  async subscribe(userId: string): Promise<void> {
    this.assertOpen();
    this.subscribed.add(userId);
    this.cluster.streams.subscribe(userId, this.sink);
  }

  async unsubscribe(userId: string): Promise<void> {
    this.assertOpen();
    if (!this.subscribed.delete(userId)) return;
    this.cluster.streams.unsubscribe(userId, this.sink);
  }

  /** Drops expired events, idle streams (`MemoryStreams.sweep`) and expired runs. */
  async sweep(now: number): Promise<number> {
    this.assertOpen();
    return this.cluster.streams.sweep(now) + this.cluster.runs.sweep(now);
  }

  // ---- RunStore -------------------------------------------------------------

  async readRun(userId: string, runId: string): Promise<RunSnapshot | null> {
    this.assertOpen();
    return this.cluster.runs.read(userId, runId, this.cluster.now());
  }

  async listRuns(userId: string, limit: number): Promise<RunSnapshot[]> {
    this.assertOpen();
    if (!Number.isSafeInteger(limit) || limit < 1)
      throw new RangeError('limit must be an integer >= 1');
    return this.cluster.runs.list(userId, limit, this.cluster.now());
  }

  // ---- ClusterBus -----------------------------------------------------------

  async broadcast(frame: string): Promise<void> {
    this.assertOpen();
    this.cluster.broadcast(frame);
  }

  async control(message: ControlMessage): Promise<void> {
    this.assertOpen();
    this.cluster.control(message);
  }

  async reportDelivery(report: DeliveryReport): Promise<void> {
    this.assertOpen();
    this.cluster.report(report);
  }

  receiveBroadcast(frame: string): void {
    this.handlers?.onBroadcast(frame);
  }

  receiveControl(message: ControlMessage): void {
    this.handlers?.onControl(message);
  }

  receiveDelivery(report: DeliveryReport): void {
    this.handlers?.onDelivery(report);
  }

  // ---- PresenceStore --------------------------------------------------------

  async putConnections(
    userId: string,
    records: readonly ConnectionRecord[],
    ttlMs: number,
  ): Promise<void> {
    this.assertOpen();
    const now = this.cluster.now();
    this.cluster.presence.put(this.nodeId, userId, records, now + positiveTtl(ttlMs), now);
  }

  async listConnections(userId: string): Promise<ConnectionRecord[]> {
    this.assertOpen();
    return this.cluster.presence.list(userId, this.cluster.now());
  }

  async putNodeLoad(connections: number, ttlMs: number): Promise<void> {
    this.assertOpen();
    if (!Number.isSafeInteger(connections) || connections < 0) {
      throw new RangeError('connections must be an integer >= 0');
    }
    this.cluster.presence.putLoad(
      this.nodeId,
      connections,
      this.cluster.now() + positiveTtl(ttlMs),
    );
  }

  async nodeLoads(): Promise<Map<string, number>> {
    this.assertOpen();
    return this.cluster.presence.loadsAt(this.cluster.now());
  }

  // ---- Lifecycle ------------------------------------------------------------

  stats(): MemoryBrokerStats {
    const runs = this.cluster.runs.stats();
    return {
      ...this.cluster.streams.stats(),
      subscribedUsers: this.subscribed.size,
      runs: runs.runs,
      runBytes: runs.bytes,
    };
  }

  health(): BrokerHealth {
    return this.closed ? { healthy: false, reason: 'broker closed' } : { healthy: true };
  }

  /** Leaves the cluster (with its subscriptions and presence); a cluster of its own is dropped. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const userId of this.subscribed) this.cluster.streams.unsubscribe(userId, this.sink);
    this.subscribed.clear();
    this.cluster.leave(this);
    this.handlers = undefined;
    if (this.ownsCluster) this.cluster.clear();
  }

  private assertOpen(): void {
    if (this.closed) throw new BrokerUnavailableError('broker closed');
  }
}
