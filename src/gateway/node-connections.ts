/**
 * The connections of this node from upgrade to close: a new connection is
 * registered, subscribed to its user's stream, then opened (welcome and
 * replay); a closed one leaves the registry, the presence store and, with
 * the user's last connection, the subscription. It is what every
 * `Connection` calls back into (`ConnectionHost`).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { VerifiedUser } from '../auth/authenticator.js';
import type { StreamEngine } from '../broker/stream-engine.js';
import type { RunStore } from '../broker/run-store.js';
import { GatewayError } from '../errors.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { CloseCode } from '../protocol/close-codes.js';
import type { ClusterDirectory } from './cluster-directory.js';
import { Connection } from './connection.js';
import type { ConnectionHost } from './connection-host.js';
import type { Admission } from './handshake-gate.js';
import type { ConnectionTransport } from './connection-transport.js';
import type { DeliveryReports } from './delivery-reports.js';
import type { EventFramer } from './event-framer.js';
import type { NodeStats } from './node-stats.js';
import type { OperatorApi } from './operator-api.js';
import type { ResolvedOptions } from './options.js';
import type { ConnectionRegistry } from './registry.js';
import type { Subscriptions } from './subscriptions.js';
import { WriteCoalescer } from './write-coalescer.js';

/** The node's parts its connections work with. */
export interface NodeConnectionsParts {
  readonly nodeId: string;
  readonly options: ResolvedOptions;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  readonly registry: ConnectionRegistry<Connection>;
  readonly streams: StreamEngine;
  readonly runs: RunStore;
  readonly framer: EventFramer;
  readonly reports: DeliveryReports;
  readonly subscriptions: Subscriptions;
  readonly directory: ClusterDirectory;
  readonly operator: OperatorApi;
  readonly stats: NodeStats;
}

/** A handshake that passed, as `open` takes it. */
export interface Arrival extends Admission {
  /** A WebSocket (`SocketWriter`, built with this node's `coalescer`) or an SSE response. */
  transport: ConnectionTransport;
  /** The connection id; default: a new one. */
  id?: string;
  /** The raw socket under the transport was corked by the handshake. */
  corked: boolean;
}

export class NodeConnections implements ConnectionHost {
  readonly nodeId: string;
  readonly options: ResolvedOptions;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  readonly streams: StreamEngine;
  readonly runs: RunStore;
  readonly framer: EventFramer;
  readonly reports: DeliveryReports;
  readonly stats: NodeStats;
  readonly coalescer = new WriteCoalescer();
  /** Set while a drain waits for the last connection to go. */
  private onEmpty: (() => void) | null = null;

  constructor(private readonly parts: NodeConnectionsParts) {
    this.nodeId = parts.nodeId;
    this.options = parts.options;
    this.metrics = parts.metrics;
    this.logger = parts.logger;
    this.streams = parts.streams;
    this.runs = parts.runs;
    this.framer = parts.framer;
    this.reports = parts.reports;
    this.stats = parts.stats;
  }

  /** Registers, subscribes and opens a connection for a handshake that passed. */
  async open(arrival: Arrival): Promise<Connection> {
    const { registry, subscriptions } = this.parts;
    const { user, ip, userAgent, cursor, snapshots } = arrival;
    const connection = new Connection(
      arrival.id ?? newConnectionId(),
      user.userId,
      ip,
      userAgent,
      Date.now(),
      user,
      arrival.transport,
      this,
    );
    if (arrival.corked) connection.adoptCork();
    registry.attach(arrival.reservation, connection);
    this.updateGauges();
    this.logger.info(
      {
        connectionId: connection.id,
        userId: user.userId,
        ip,
        transport: arrival.transport.kind,
        resume: cursor.kind === 'position',
      },
      'connection opened',
    );
    if (this.options.limits.userConnectionPolicy === 'evict-oldest') this.evictOldest(connection);
    try {
      await subscriptions.acquire(user.userId);
    } catch (error) {
      this.parts.stats.countError('broker_subscribe');
      this.metrics.brokerErrors.inc({ op: 'subscribe' });
      this.logger.error(
        { connectionId: connection.id, err: (error as Error).message },
        'subscribe failed',
      );
      connection.close(CloseCode.StreamReset);
      return connection;
    }
    await connection.open(cursor, snapshots);
    if (connection.state === 'open') {
      this.parts.operator.opened(user.userId);
      this.parts.directory.touch(user.userId);
    }
    return connection;
  }

  async verifyRefresh(token: string): Promise<VerifiedUser> {
    const user = await this.options.authenticator.verify(token);
    // A user blocked since the handshake must not extend its connection by
    // refreshing (PROTOCOL.md close codes: 4403 "user blocked").
    if (this.options.isUserBlocked && (await this.options.isUserBlocked(user.userId))) {
      throw new GatewayError('forbidden', 'user blocked');
    }
    return user;
  }

  closed(connection: Connection, code: number): void {
    const { registry } = this.parts;
    const remaining = registry.remove(connection);
    if (registry.connectionCount === 0) this.onEmpty?.();
    this.metrics.countClose(code);
    this.updateGauges();
    this.logger.info(
      { connectionId: connection.id, userId: connection.userId, code, sentSeq: connection.sentSeq },
      'connection closed',
    );
    this.parts.directory.touch(connection.userId);
    if (remaining === 0) this.parts.subscriptions.release(connection.userId);
  }

  /** Resolves when the last connection is gone (every close calls `onEmpty`), or at the deadline. */
  async waitForEmpty(timeoutMs: number): Promise<void> {
    if (this.parts.registry.connectionCount === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.onEmpty = resolve;
      timer = setTimeout(resolve, timeoutMs);
    });
    clearTimeout(timer);
    this.onEmpty = null;
  }

  /**
   * The `evict-oldest` policy: the newcomer stays, and the user's oldest live
   * connections go (4409) until the user is within its limit again. Closing
   * ones no longer count: they are already on their way out.
   */
  private evictOldest(newcomer: Connection): void {
    const live = [...this.parts.registry.connectionsOf(newcomer.userId)]
      .filter((c) => c !== newcomer && (c.state === 'open' || c.state === 'connecting'))
      .sort((a, b) => a.connectedAt - b.connectedAt);
    let excess = live.length + 1 - this.options.limits.maxConnectionsPerUser;
    for (const connection of live) {
      if (excess-- <= 0) break;
      connection.close(CloseCode.Replaced);
    }
  }

  private updateGauges(): void {
    this.metrics.setOpen(this.parts.registry.connectionCount, this.parts.registry.userCount);
  }
}

/** A new connection id (`c_<uuid>`). */
export function newConnectionId(): string {
  return `c_${randomUUID()}`;
}
