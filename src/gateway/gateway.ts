/**
 * The composition root of a gateway node: the WebSocket endpoint (handshake,
 * refusals, upgrade), the registry of connections, delivery from the broker
 * to sockets, publish (with wait), broadcast, operator queries and a graceful
 * close. The broker owns streams; this file owns sockets.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type ServerOptions, type WebSocket } from 'ws';
import type { VerifiedUser } from '../auth/authenticator.js';
import { MemoryTicketStore } from '../auth/memory-ticket-store.js';
import type { TicketStore } from '../auth/ticket-store.js';
import {
  BrokerUnavailableError,
  type Broker,
  type DeliveryReport,
  type HistoryRead,
  type ReadCursor,
  type StreamEvent,
} from '../broker/broker.js';
import { MemoryBroker } from '../broker/memory-broker.js';
import { GatewayError, RETRY_AFTER_SECONDS as RETRY_AFTER_UNAVAILABLE } from '../errors.js';
import { GatewayMetrics, type HandshakeOutcome } from '../observability/metrics.js';
import { redactUrl, silentLogger } from '../observability/logger.js';
import { CloseCode } from '../protocol/close-codes.js';
import type { EventInput } from '../protocol/event-input.js';
import { SUBPROTOCOL, type JsonValue } from '../protocol/frames.js';
import { isValidUserId } from '../protocol/user-id.js';
import { Supervisor } from '../tasks/supervisor.js';
import { Connection, type ConnectionHost } from './connection.js';
import { DeliveryWaiters } from './delivery-waiters.js';
import { ClusterDirectory } from './cluster-directory.js';
import type {
  BatchItem,
  BatchResult,
  BroadcastResult,
  ConnectionSnapshot,
  Gateway,
  GatewayStats,
  PublishResult,
  PublishWaitOptions,
  Readiness,
} from './gateway-types.js';
import { HandshakeGate, outcomeOf, pathOf } from './handshake-gate.js';
import { KeyedMutex } from './keyed-mutex.js';
import { KeyedWaiters } from './keyed-waiters.js';
import { Publisher } from './publisher.js';

export { MAX_WAIT_MS } from './publisher.js';
import { WriteCoalescer } from './write-coalescer.js';
import { encodeTextFrame } from './wire-frame.js';
import { resolveOptions, type GatewayOptions, type ResolvedOptions } from './options.js';
import { refuseHandshake } from './refuse-handshake.js';
import { ConnectionRegistry, type Reservation } from './registry.js';

/** Publishes waiting for delivery at once. */
const MAX_WAITERS = 10_000;

export interface CreateGatewayOptions extends GatewayOptions {
  /** Metrics registry owner. Default: a new `GatewayMetrics` with its own registry. */
  metrics?: GatewayMetrics;
}

/**
 * Creates a gateway node. Attach it to an HTTP server, or route upgrades to
 * `handleUpgrade` yourself.
 *
 * @example
 * const gateway = createGateway({ authenticator: createJwtAuthenticator({ secret }) });
 * gateway.attach(httpServer);
 * await gateway.publish('alice', { event: 'agent_started', runId: 'r1', data: { agent: 'helper' } });
 */
export function createGateway(options: CreateGatewayOptions): GatewayNode {
  return new GatewayNode(options);
}

export class GatewayNode implements Gateway, ConnectionHost {
  readonly nodeId: string;
  readonly options: ResolvedOptions;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  readonly broker: Broker;
  readonly tickets: TicketStore;
  readonly supervisor: Supervisor;
  /** Resolves when the broker has started; every publish and handshake waits for it. */
  readonly ready: Promise<void>;

  private readonly ownsBroker: boolean;
  private readonly registry = new ConnectionRegistry<Connection>();
  private readonly userLocks = new KeyedMutex();
  /** Users this node is subscribed to in the broker. */
  private readonly subscribed = new Set<string>();
  private readonly gate: HandshakeGate;
  private readonly wss: WebSocketServer;
  private readonly waiters = new DeliveryWaiters(MAX_WAITERS);
  private readonly connectionWaiters = new KeyedWaiters<boolean>(MAX_WAITERS);
  /** The last event framed, and its frame: a fan-out frames its event once. */
  private lastFramed: StreamEvent | null = null;
  private lastFrame: Buffer = Buffer.alloc(0);
  readonly coalescer = new WriteCoalescer();
  /** Acks to store, per user: the highest seq and the epoch it belongs to. */
  private readonly pendingAcks = new Map<string, { seq: number; epoch: string }>();
  private ackFlushScheduled = false;
  private draining = false;
  private startError: Error | null = null;
  /** Publishes and broadcasts under way; `close` waits for them. */
  private inflight = 0;
  private onIdle: (() => void) | null = null;
  /** Set while `close` waits for the last connection to go. */
  private onEmpty: (() => void) | null = null;
  private started = false;
  private readonly counters = {
    published: 0,
    duplicates: 0,
    delivered: 0,
    replayed: 0,
    acked: 0,
    broadcasts: 0,
  };
  private readonly errors: Record<string, number> = {};
  /** Other nodes' connections and counts, when the broker keeps them (Redis). */
  private readonly directory: ClusterDirectory;
  private readonly publisher: Publisher;

  constructor(options: CreateGatewayOptions) {
    this.options = resolveOptions(options);
    this.metrics = options.metrics ?? new GatewayMetrics();
    this.logger = options.logger ?? silentLogger();
    this.ownsBroker = options.broker === undefined;
    this.broker =
      options.broker ??
      new MemoryBroker({
        historySize: this.options.historySize,
        historyTtlMs: this.options.historyTtlMs,
      });
    this.nodeId = this.broker.nodeId;
    this.tickets = options.tickets ?? new MemoryTicketStore();
    const serverOptions: ServerOptions & { maxFragments: number } = {
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: this.options.limits.maxFrameBytes,
      // The fragment cap of PROTOCOL.md section 2. ws (>= 8.21) counts every
      // data frame of a message, empty ones included, and past the cap closes
      // with 1008 and stops reading the socket. Each fragment is held as a
      // Buffer view until its message ends, so with ws's default (16 384) one
      // never-ending message of 1-byte fragments would pin ~2 MB per
      // connection. Not yet in @types/ws, hence the widened type.
      maxFragments: this.options.limits.maxFragments,
      // Protocol-level pings are answered by `Connection` under the same
      // frame-rate budget as every other client frame: with ws answering them
      // itself, a client flooding pings and never reading would grow the
      // server's unsent bytes without ever passing through our limits.
      autoPong: false,
      // Answer `agentsocket.v1` alone: never echo the `bearer.<jwt>` entry.
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    };
    this.wss = new WebSocketServer(serverOptions);
    this.supervisor = new Supervisor({ logger: this.logger, metrics: this.metrics });
    this.directory = new ClusterDirectory({
      broker: this.broker,
      nodeId: this.nodeId,
      registry: this.registry,
      supervisor: this.supervisor,
      logger: this.logger,
      metrics: this.metrics,
    });
    this.addTasks();
    this.ready = this.broker
      .start({
        onEvent: (userId, epoch, event) => this.onEvent(userId, epoch, event),
        onBroadcast: (frame) => this.onBroadcast(frame),
        onResync: (userId) => this.onResync(userId),
        onDelivery: (report) => this.waiters.report(report),
        // Every node gets it, this one too (already done here: it closes nothing more).
        onControl: (message) => {
          if (message.kind === 'disconnect') this.disconnectUser(message.userId, message.code);
        },
        onHealthChange: (healthy, reason) =>
          this.logger[healthy ? 'info' : 'error'](
            { reason },
            healthy ? 'broker healthy' : 'broker unhealthy',
          ),
      })
      .then(() => {
        this.started = true;
        this.supervisor.start();
      })
      .catch((error: Error) => {
        this.startError = error;
        this.logger.error({ err: error.message }, 'broker failed to start');
      });
    this.publisher = new Publisher({
      broker: this.broker,
      options: this.options,
      metrics: this.metrics,
      nodeId: this.nodeId,
      waiters: this.waiters,
      directory: this.directory,
      counters: this.counters,
      ready: this.ready,
      isStarted: () => this.started,
      assertAccepting: () => this.assertAccepting(),
      assertBrokerStarted: () => this.assertBrokerStarted(),
      brokerFailure: (op, error) => this.brokerFailure(op, error),
      countError: (kind) => this.countError(kind),
      begin: () => void this.inflight++,
      settle: () => this.settle(),
    });
    this.gate = new HandshakeGate({
      options: this.options,
      registry: this.registry,
      tickets: this.tickets,
      ready: this.ready,
      isDraining: () => this.draining,
      assertBrokerUsable: () => this.assertBrokerUsable(),
      countError: (kind) => this.countError(kind),
    });
  }

  // ---- WebSocket endpoint -------------------------------------------------

  /** See `Gateway.attach`; pair it with `hardenServer(server, limits.handshakeTimeoutMs)`. */
  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      // Other upgrade paths on a shared server belong to other handlers.
      if (pathOf(req.url) !== this.options.path) return;
      this.handleUpgrade(req, socket, head);
    });
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const deadline = setTimeout(() => {
      this.countHandshake('error');
      socket.destroy();
    }, this.options.limits.handshakeTimeoutMs);
    deadline.unref();
    const clear = (): void => clearTimeout(deadline);
    socket.once('close', clear);
    this.admit(req, socket, head)
      .catch((error: unknown) => {
        const refusal =
          error instanceof GatewayError ? error : new GatewayError('internal', 'handshake failed');
        if (!(error instanceof GatewayError)) {
          this.logger.error(
            { err: (error as Error).message, url: redactUrl(req.url) },
            'handshake error',
          );
        }
        this.countHandshake(outcomeOf(refusal));
        refuseHandshake(socket, refusal);
      })
      .finally(() => {
        // Nothing per handshake stays on a socket that lives on as a connection.
        clear();
        socket.removeListener('close', clear);
      });
  }

  /** Admits the handshake (or throws its refusal), then upgrades it. */
  private async admit(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const admission = await this.gate.admit(req, socket);
    if (!admission) return;
    const { reservation, user, ip, cursor } = admission;
    // ws may refuse the upgrade itself (bad Sec-WebSocket-Key…); the slot comes back then.
    const release = (): void => this.registry.release(reservation);
    socket.once('close', release);
    // Held from here to the end of the turn, so the 101 answer, the welcome
    // and a replay read from memory leave in one write. If ws refuses the
    // upgrade instead, its `end()` uncorks.
    socket.cork();
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      socket.removeListener('close', release);
      this.countHandshake('accepted');
      const userAgent = req.headers['user-agent']?.slice(0, 256) ?? null;
      void this.onUpgraded(ws, reservation, user, ip, userAgent, cursor, socket);
    });
  }

  /**
   * The `evict-oldest` policy: the newcomer stays, and the user's oldest live
   * connections go (4409) until the user is within its limit again. Closing
   * ones no longer count: they are already on their way out.
   */
  private evictOldest(newcomer: Connection): void {
    const live = [...this.registry.connectionsOf(newcomer.userId)]
      .filter((c) => c !== newcomer && (c.state === 'open' || c.state === 'connecting'))
      .sort((a, b) => a.connectedAt - b.connectedAt);
    let excess = live.length + 1 - this.options.limits.maxConnectionsPerUser;
    for (const connection of live) {
      if (excess-- <= 0) break;
      connection.close(CloseCode.Replaced);
    }
  }

  private async onUpgraded(
    ws: WebSocket,
    reservation: Reservation,
    user: VerifiedUser,
    ip: string,
    userAgent: string | null,
    cursor: ReadCursor,
    socket: Duplex | null = null,
  ): Promise<Connection> {
    const now = Date.now();
    const connection = new Connection(
      `c_${randomUUID()}`,
      user.userId,
      ip,
      userAgent,
      now,
      user,
      ws,
      this,
      socket,
    );
    if (socket) connection.adoptCork();
    this.registry.attach(reservation, connection);
    this.updateGauges();
    this.logger.info(
      { connectionId: connection.id, userId: user.userId, ip, resume: cursor.kind === 'position' },
      'connection opened',
    );
    if (this.options.limits.userConnectionPolicy === 'evict-oldest') {
      this.evictOldest(connection);
    }
    try {
      await this.userLocks.run(user.userId, async () => {
        if (this.subscribed.has(user.userId) || this.registry.countOf(user.userId) === 0) return;
        await this.broker.subscribe(user.userId);
        this.subscribed.add(user.userId);
      });
    } catch (error) {
      this.countError('broker_subscribe');
      this.metrics.brokerErrors.inc({ op: 'subscribe' });
      this.logger.error(
        { connectionId: connection.id, err: (error as Error).message },
        'subscribe failed',
      );
      connection.close(CloseCode.StreamReset);
      return connection;
    }
    await connection.open(cursor);
    if (connection.state === 'open') {
      this.connectionWaiters.resolve(user.userId, true);
      this.directory.touch(user.userId);
    }
    return connection;
  }

  // ---- ConnectionHost -----------------------------------------------------

  readHistory(userId: string, cursor: ReadCursor): Promise<HistoryRead> {
    return this.broker.readHistory(userId, cursor);
  }

  wireFrame(event: StreamEvent): Buffer {
    if (event !== this.lastFramed) {
      this.lastFrame = encodeTextFrame(event.frame);
      this.lastFramed = event;
    }
    return this.lastFrame;
  }

  acked(connection: Connection, seq: number, awaited: readonly StreamEvent[]): void {
    this.counters.acked++;
    // Coalesce: one broker ack per user per turn of the event loop.
    const pending = this.pendingAcks.get(connection.userId);
    if (!pending || pending.epoch !== connection.epoch || pending.seq < seq) {
      this.pendingAcks.set(connection.userId, { seq, epoch: connection.epoch });
    }
    if (!this.ackFlushScheduled) {
      this.ackFlushScheduled = true;
      setImmediate(() => this.flushAcks());
    }
    for (const event of awaited) this.report(connection, event, 'acked');
  }

  written(connection: Connection, event: StreamEvent): void {
    this.report(connection, event, 'written');
  }

  replayed(count: number): void {
    // `/v1/stats` and `/metrics` count the same thing: delivered includes replay.
    this.counters.replayed += count;
    this.counters.delivered += count;
    this.metrics.eventsReplayed.inc(count);
    this.metrics.eventsDelivered.inc(count);
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
    const remaining = this.registry.remove(connection);
    if (this.registry.connectionCount === 0) this.onEmpty?.();
    this.metrics.closes.inc({ code: String(code) });
    this.updateGauges();
    this.logger.info(
      { connectionId: connection.id, userId: connection.userId, code, sentSeq: connection.sentSeq },
      'connection closed',
    );
    this.directory.touch(connection.userId);
    if (remaining > 0) return;
    const { userId } = connection;
    void this.userLocks
      .run(userId, async () => {
        if (this.registry.countOf(userId) > 0 || !this.subscribed.has(userId)) return;
        this.subscribed.delete(userId);
        await this.broker.unsubscribe(userId);
      })
      .catch((error: Error) => {
        this.metrics.brokerErrors.inc({ op: 'unsubscribe' });
        this.logger.error({ userId, err: error.message }, 'unsubscribe failed');
      });
  }

  // ---- Broker handlers ----------------------------------------------------

  private onEvent(userId: string, epoch: string, event: StreamEvent): void {
    let written = 0;
    const connections = this.registry.connectionsOf(userId);
    const frame = this.wireFrame(event);
    for (const connection of connections) {
      if (connection.deliverLive(event, frame, epoch)) written++;
    }
    if (written > 0) {
      this.counters.delivered += written;
      this.metrics.eventsDelivered.inc(written);
      this.metrics.deliveryLatency.observe(Math.max(0, Date.now() - event.ts) / 1000);
    }
    this.publisher.countWrites(userId, written);
  }

  private onBroadcast(frame: string): void {
    const wire = encodeTextFrame(frame);
    let written = 0;
    for (const connection of this.registry.all()) if (connection.sendShared(wire, frame)) written++;
    this.publisher.countBroadcastWrites(written);
  }

  private onResync(userId: string): void {
    for (const connection of [...this.registry.connectionsOf(userId)]) void connection.resync();
  }

  // ---- Publishing ---------------------------------------------------------

  publish(userId: string, input: EventInput, options?: PublishWaitOptions): Promise<PublishResult> {
    return this.publisher.publish(userId, input, options);
  }

  publishBatch(items: readonly BatchItem[]): Promise<BatchResult[]> {
    return this.publisher.publishBatch(items);
  }

  broadcast(event: string, data?: JsonValue): Promise<BroadcastResult> {
    return this.publisher.broadcast(event, data);
  }

  /** One pending publish or broadcast is done; the drain may go on when none are left. */
  private settle(): void {
    this.inflight--;
    if (this.inflight === 0) this.onIdle?.();
  }

  private report(connection: Connection, event: StreamEvent, kind: 'written' | 'acked'): void {
    if (event.awaitedBy === undefined) return;
    const report: DeliveryReport = {
      userId: connection.userId,
      id: event.id,
      seq: event.seq,
      epoch: connection.epoch,
      awaitedBy: event.awaitedBy,
      kind,
      connections: 1,
    };
    this.broker.reportDelivery(report).catch((error: Error) => {
      this.metrics.brokerErrors.inc({ op: 'report_delivery' });
      this.logger.warn({ err: error.message }, 'delivery report failed');
    });
  }

  private flushAcks(): void {
    this.ackFlushScheduled = false;
    for (const [userId, { seq, epoch }] of this.pendingAcks) {
      this.broker.ack(userId, seq, epoch).catch((error: Error) => {
        this.countError('broker_ack');
        this.metrics.brokerErrors.inc({ op: 'ack' });
        this.logger.warn({ userId, err: error.message }, 'ack not stored');
      });
    }
    this.pendingAcks.clear();
  }

  // ---- Operators ----------------------------------------------------------

  /**
   * Serves a WebSocket that the embedder accepted and authenticated itself
   * (the legacy `add_connection`): from here on it is a connection like any
   * other, with the same limits, welcome, replay and delivery.
   */
  async adopt(
    ws: WebSocket,
    user: VerifiedUser,
    options: { ip?: string; userAgent?: string; cursor?: ReadCursor } = {},
  ): Promise<ConnectionSnapshot> {
    if (!isValidUserId(user.userId))
      throw new GatewayError('bad_request', 'userId is malformed', 'userId');
    this.assertAccepting();
    await this.ready;
    // Fix (scenarios branch): a socket that is not open never emits 'close'
    // again, so adopting one left a ghost connection in the registry forever,
    // holding a slot of the user's limit. Refuse it instead. Everything from
    // here to the Connection's listeners being attached runs synchronously.
    if (ws.readyState !== ws.OPEN) {
      throw new GatewayError('bad_request', 'the socket is not open', 'ws');
    }
    const ip = options.ip ?? 'adopted';
    const reservation = this.gate.reserveSlot(user.userId, ip);
    const connection = await this.onUpgraded(
      ws,
      reservation,
      user,
      ip,
      options.userAgent ?? null,
      options.cursor ?? { kind: 'acked' },
    );
    return connection.snapshot();
  }

  /**
   * Resolves true as soon as the user has an open connection on this node
   * (at once if it has one), false after `timeoutMs`.
   */
  waitForConnection(userId: string, timeoutMs: number): Promise<boolean> {
    for (const connection of this.registry.connectionsOf(userId)) {
      if (connection.state === 'open') return Promise.resolve(true);
    }
    return this.connectionWaiters.wait(userId, timeoutMs);
  }

  /**
   * Closes one connection of the user with `code` (default 1000, normal), as
   * the legacy `remove_connection` does. False when the user has no such
   * connection on this node, or it is already closing.
   */
  closeConnection(
    userId: string,
    connectionId: string,
    code: number = CloseCode.Normal,
    reason?: string,
  ): boolean {
    for (const connection of this.registry.connectionsOf(userId)) {
      if (connection.id !== connectionId) continue;
      if (connection.state === 'closing' || connection.state === 'closed') return false;
      connection.close(code, reason);
      return true;
    }
    return false;
  }

  connections(userId: string): ConnectionSnapshot[] {
    return [...this.registry.connectionsOf(userId)].map((c) => c.snapshot());
  }

  async connectionsEverywhere(userId: string): Promise<ConnectionSnapshot[]> {
    if (!isValidUserId(userId))
      throw new GatewayError('bad_request', 'userId is malformed', 'userId');
    let remote: ConnectionSnapshot[];
    try {
      remote = await this.directory.remoteConnections(userId);
    } catch (error) {
      throw this.brokerFailure('list_connections', error);
    }
    return [...this.connections(userId), ...remote];
  }

  async disconnectUserEverywhere(
    userId: string,
    code: number = CloseCode.TokenExpired,
  ): Promise<number> {
    if (!isValidUserId(userId))
      throw new GatewayError('bad_request', 'userId is malformed', 'userId');
    let remote = 0;
    try {
      for (const snapshot of await this.directory.remoteConnections(userId)) {
        if (snapshot.state === 'open' || snapshot.state === 'connecting') remote++;
      }
      // Close here first: the count of this node is exact. The command then
      // reaches every node (this one finds nothing left to close).
      const local = this.disconnectUser(userId, code);
      await this.broker.control?.({ kind: 'disconnect', userId, code });
      return local + remote;
    } catch (error) {
      throw this.brokerFailure('control', error);
    }
  }

  disconnectUser(userId: string, code: number = CloseCode.TokenExpired, reason?: string): number {
    let closed = 0;
    for (const connection of [...this.registry.connectionsOf(userId)]) {
      if (connection.state === 'closing' || connection.state === 'closed') continue;
      connection.close(code, reason);
      closed++;
    }
    if (closed > 0) this.logger.info({ userId, closed, code }, 'user disconnected by operator');
    return closed;
  }

  stats(): GatewayStats {
    return {
      node: this.nodeId,
      connections: this.registry.connectionCount,
      users: this.registry.userCount,
      events: { ...this.counters },
      errors: { ...this.errors },
    };
  }

  readiness(): Readiness {
    const reasons: string[] = [];
    if (this.draining) reasons.push('draining');
    if (this.startError) reasons.push(`broker failed to start: ${this.startError.message}`);
    const health = this.broker.health();
    if (!health.healthy) reasons.push(`broker unavailable: ${health.reason ?? 'unknown'}`);
    reasons.push(...this.supervisor.unhealthyCritical());
    return { ready: reasons.length === 0, reasons };
  }

  /** Registered connections (open or closing) on this node. */
  get connectionCount(): number {
    return this.registry.connectionCount;
  }

  async close(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    this.logger.info({ connections: this.registry.connectionCount }, 'draining');
    // Publishes already accepted finish first, so their events reach sockets.
    if (this.inflight > 0) {
      await new Promise<void>((resolve) => (this.onIdle = resolve));
      this.onIdle = null;
    }
    for (const connection of [...this.registry.all()]) connection.close(CloseCode.GoingAway);
    await this.waitForEmptyRegistry(this.options.closeTimeoutMs + 1000);
    this.supervisor.stop();
    this.wss.close();
    if (this.ownsBroker) await this.broker.close();
    this.logger.info('drained');
  }

  // ---- Internals ----------------------------------------------------------

  private addTasks(): void {
    const sweepEvery = Math.max(10, Math.min(1000, Math.floor(this.options.heartbeatMs / 2)));
    this.supervisor.add({
      name: 'heartbeat-sweep',
      intervalMs: sweepEvery,
      critical: true,
      run: () => {
        const now = Date.now();
        for (const connection of this.registry.all()) connection.sweep(now);
      },
    });
    this.supervisor.add({
      name: 'ticket-expiry',
      intervalMs: 10_000,
      run: async () => void (await this.tickets.sweep(Date.now())),
    });
    const broker = this.broker;
    if (broker.sweep) {
      this.supervisor.add({
        name: 'history-expiry',
        intervalMs: Math.min(60_000, Math.max(100, Math.floor(this.options.historyTtlMs / 10))),
        run: async () => void (await broker.sweep?.(Date.now())),
      });
    }
    this.supervisor.add({
      name: 'broker-health',
      intervalMs: 1000,
      critical: true,
      failureThreshold: 1,
      run: () => {
        const health = this.broker.health();
        if (!health.healthy) throw new Error(health.reason ?? 'broker unhealthy');
      },
    });
  }

  private assertAccepting(): void {
    if (this.draining) {
      throw new GatewayError(
        'unavailable',
        'server is draining',
        undefined,
        RETRY_AFTER_UNAVAILABLE,
      );
    }
  }

  /**
   * For publishes and broadcasts. Fix (cluster branch): these used to check
   * `broker.health()` too, which is false while *any* engine link is down; a
   * cut of the Redis pub/sub links alone (a blip, `CLIENT KILL TYPE pubsub`)
   * then refused every publish with 503 on every node, although the command
   * link could store them and the followers catch up from history. The
   * broker contract (point 6) already makes a step it cannot do reject with
   * `BrokerUnavailableError` at once (503), so the broker decides.
   */
  private assertBrokerStarted(): void {
    if (this.startError) {
      throw new GatewayError(
        'unavailable',
        'broker failed to start',
        undefined,
        RETRY_AFTER_UNAVAILABLE,
      );
    }
  }

  /** For handshakes: a node that cannot follow its users' streams takes no new connections. */
  private assertBrokerUsable(): void {
    this.assertBrokerStarted();
    const health = this.broker.health();
    if (!health.healthy) {
      throw new GatewayError(
        'unavailable',
        'broker unavailable',
        undefined,
        RETRY_AFTER_UNAVAILABLE,
      );
    }
  }

  private brokerFailure(op: string, error: unknown): GatewayError {
    if (error instanceof GatewayError) return error;
    this.countError(`broker_${op}`);
    this.metrics.brokerErrors.inc({ op });
    this.logger.error({ op, err: (error as Error).message }, 'broker operation failed');
    if (error instanceof BrokerUnavailableError) {
      return new GatewayError(
        'unavailable',
        'broker unavailable',
        undefined,
        RETRY_AFTER_UNAVAILABLE,
      );
    }
    return new GatewayError('internal', `${op} failed`);
  }

  private countHandshake(outcome: HandshakeOutcome): void {
    this.metrics.handshakes.inc({ outcome });
    if (outcome !== 'accepted') this.countError(`handshake_${outcome}`);
  }

  private countError(kind: string): void {
    this.errors[kind] = (this.errors[kind] ?? 0) + 1;
  }

  private updateGauges(): void {
    this.metrics.connections.set(this.registry.connectionCount);
    this.metrics.users.set(this.registry.userCount);
  }

  /** Resolves when the last connection is gone (every close calls `onEmpty`), or at the deadline. */
  private async waitForEmptyRegistry(timeoutMs: number): Promise<void> {
    if (this.registry.connectionCount === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.onEmpty = resolve;
      timer = setTimeout(resolve, timeoutMs);
    });
    clearTimeout(timer);
    this.onEmpty = null;
  }
}

/** A snapshot another node wrote to the directory; undefined when it is not one. */
