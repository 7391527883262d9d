/**
 * The composition root of a gateway node: it builds the node's parts and
 * wires them, and holds no logic of its own. The broker owns streams; the
 * parts below own sockets (see docs/architecture.md):
 * - `NodeLifecycle`: start, drain, publishes in flight, readiness; `addNodeTasks`: its timers;
 * - `NodeStats` / `BrokerFailures`: counters, and broker failure → `GatewayError`;
 * - `WebSocketEndpoint` + `HandshakeGate`: upgrade, checks, refusals;
 * - `SseEndpoint`: the same connections over Server-Sent Events (`GET /v1/sse`);
 * - `NodeConnections`: a connection from upgrade to close (`ConnectionHost`);
 * - `Subscriptions`: one stream subscription per user with connections here;
 * - `FanOut`: broker events and broadcasts → registry → connections;
 * - `DeliveryReports`: ack coalescing and delivery reports;
 * - `Publisher`: publish (with wait), batches, broadcasts;
 * - `AguiStreams` + `RunListeners`: the AG-UI SSE streams of single runs;
 * - `OperatorApi` + `ClusterDirectory`: listing and closing connections anywhere.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { VerifiedUser } from '../auth/authenticator.js';
import { MemoryTicketStore } from '../auth/memory-ticket-store.js';
import type { TicketStore } from '../auth/ticket-store.js';
import type { Broker } from '../broker/broker.js';
import type { ReadCursor } from '../broker/stream-engine.js';
import { MemoryBroker } from '../broker/memory-broker.js';
import { GatewayError } from '../errors.js';
import { GatewayMetrics } from '../observability/metrics.js';
import { silentLogger } from '../observability/logger.js';
import { CloseCode } from '../protocol/close-codes.js';
import type { EventInput } from '../protocol/event-input.js';
import type { EventMap, NoCustomEvents, TypedEventInput } from '../protocol/typed-events.js';
import type { JsonValue } from '../protocol/frames.js';
import type { SseAckRequest } from '../protocol/sse.js';
import { isValidUserId } from '../protocol/user-id.js';
import type { RunSnapshot } from '../runs/run-types.js';
import { Supervisor } from '../tasks/supervisor.js';
import { BrokerFailures } from './broker-failures.js';
import { ClusterDirectory } from './cluster-directory.js';
import type { Connection } from './connection.js';
import { DeliveryReports } from './delivery-reports.js';
import { DeliveryWaiters } from './delivery-waiters.js';
import { EventFramer } from './event-framer.js';
import { FanOut } from './fan-out.js';
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
import { HandshakeGate } from './handshake-gate.js';
import { NodeConnections } from './node-connections.js';
import { NodeLifecycle } from './node-lifecycle.js';
import { addNodeTasks } from './node-tasks.js';
import { resolveAguiStreamOptions, type AguiStreamOptions } from './agui-options.js';
import type { AguiRunStream, AguiStreamRequest } from './agui-run-stream.js';
import { AguiStreams } from './agui-streams.js';
import { RunListeners } from './run-listeners.js';
import { NodeStats } from './node-stats.js';
import { OperatorApi } from './operator-api.js';
import { resolveOptions, type GatewayOptions, type ResolvedOptions } from './options.js';
import { Publisher } from './publisher.js';
import { RunReader } from './run-reader.js';
import { ConnectionRegistry } from './registry.js';
import { SocketWriter } from './socket-writer.js';
import { SseEndpoint } from './sse-endpoint.js';
import { Subscriptions } from './subscriptions.js';
import { refuseCompression, WebSocketEndpoint } from './websocket-endpoint.js';

export { MAX_WAIT_MS } from './publisher.js';

export interface CreateGatewayOptions extends GatewayOptions {
  /** Metrics registry owner. Default: a new `GatewayMetrics` with its own registry. */
  metrics?: GatewayMetrics;
  /** The AG-UI SSE streams (`POST /v1/ag-ui/runs`). Defaults: `DEFAULT_AGUI_STREAM_OPTIONS`. */
  agui?: Partial<AguiStreamOptions>;
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
export function createGateway<E extends EventMap<E> = NoCustomEvents>(
  options: CreateGatewayOptions,
): GatewayNode<E> {
  return new GatewayNode<E>(options);
}

/** A gateway node; `E` declares the app's own events (see `Gateway`). */
export class GatewayNode<E extends EventMap<E> = NoCustomEvents> implements Gateway<E> {
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
  private readonly lifecycle: NodeLifecycle;
  private readonly stats_: NodeStats;
  private readonly connections_: NodeConnections;
  private readonly endpoint: WebSocketEndpoint;
  private readonly sse: SseEndpoint;
  private readonly gate: HandshakeGate;
  private readonly operator: OperatorApi;
  private readonly publisher: Publisher;
  private readonly runReader: RunReader;
  private readonly aguiStreams: AguiStreams;

  constructor(options: CreateGatewayOptions) {
    refuseCompression(options);
    this.options = resolveOptions(options);
    this.metrics = options.metrics ?? new GatewayMetrics();
    this.logger = options.logger ?? silentLogger();
    this.ownsBroker = options.broker === undefined;
    this.broker =
      options.broker ??
      new MemoryBroker({
        historySize: this.options.historySize,
        historyTtlMs: this.options.historyTtlMs,
        runTtlMs: this.options.runTtlMs,
        runSnapshotMaxBytes: this.options.runSnapshotMaxBytes,
      });
    this.nodeId = this.broker.nodeId;
    this.tickets = options.tickets ?? new MemoryTicketStore();
    this.supervisor = new Supervisor({ logger: this.logger, metrics: this.metrics });

    const { broker, registry, metrics, logger } = this;
    const stats = (this.stats_ = new NodeStats(metrics));
    const lifecycle = (this.lifecycle = new NodeLifecycle(logger));
    const failures = new BrokerFailures(stats, metrics, logger);
    this.runReader = new RunReader(broker, failures);
    const directory = new ClusterDirectory({
      presence: broker,
      nodeId: this.nodeId,
      registry,
      supervisor: this.supervisor,
      logger,
      metrics,
    });
    const framer = new EventFramer();
    const { maxPendingWaits, maxPendingWaitsPerUser } = this.options.limits;
    const waiters = new DeliveryWaiters(maxPendingWaits, maxPendingWaitsPerUser);
    const agui = resolveAguiStreamOptions(options.agui);
    const runListeners = new RunListeners(agui);
    const fanOut = new FanOut(registry, framer, stats, metrics, runListeners);
    const subscriptions = new Subscriptions(broker, registry, failures, runListeners);
    this.operator = new OperatorApi(registry, directory, broker, failures, logger);
    this.connections_ = new NodeConnections({
      nodeId: this.nodeId,
      options: this.options,
      metrics,
      logger,
      registry,
      streams: broker,
      runs: broker,
      framer,
      reports: new DeliveryReports(broker, broker, stats, failures),
      subscriptions,
      directory,
      operator: this.operator,
      stats,
    });
    addNodeTasks(this.supervisor, registry, broker, this.tickets, this.options, metrics);
    const operator = this.operator;
    this.ready = lifecycle
      .track(
        broker.start({
          onEvent: (userId, epoch, event) => fanOut.onEvent(userId, epoch, event),
          onResync: (userId) => fanOut.onResync(userId),
          onBroadcast: (frame) => fanOut.onBroadcast(frame),
          onDelivery: (report) => waiters.report(report),
          // Every node gets it, this one too (already done here: it closes nothing more).
          onControl: (message) => operator.onControl(message),
          onHealthChange: (healthy, reason) =>
            logger[healthy ? 'info' : 'error'](
              { reason },
              healthy ? 'broker healthy' : 'broker unhealthy',
            ),
        }),
      )
      .then(() => {
        if (lifecycle.isStarted) this.supervisor.start();
      });
    this.publisher = new Publisher({
      streams: broker,
      bus: broker,
      options: this.options,
      metrics,
      nodeId: this.nodeId,
      waiters,
      directory,
      stats,
      lifecycle,
      failures,
      ready: this.ready,
    });
    this.aguiStreams = new AguiStreams({
      options: this.options,
      agui,
      listeners: runListeners,
      subscriptions,
      streams: broker,
      runs: broker,
      lifecycle,
      logger,
      metrics,
      ready: this.ready,
    });
    this.gate = new HandshakeGate({
      options: this.options,
      registry,
      tickets: this.tickets,
      lifecycle,
      broker,
      stats,
      ready: this.ready,
    });
    this.endpoint = new WebSocketEndpoint(
      this.options,
      this.gate,
      this.connections_,
      registry,
      stats,
      logger,
    );
    this.sse = new SseEndpoint(this.gate, this.connections_, registry, stats);
  }

  // ---- WebSocket endpoint -------------------------------------------------

  /** See `Gateway.attach`; pair it with `hardenServer(server, limits.handshakeTimeoutMs)`. */
  attach(server: Server): void {
    this.endpoint.attach(server);
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.endpoint.handleUpgrade(req, socket, head);
  }

  openSseStream(req: IncomingMessage, res: ServerResponse): Promise<void> {
    return this.sse.open(req, res);
  }

  ackSseStream(request: SseAckRequest): void {
    this.sse.ack(request);
  }

  // ---- Publishing ---------------------------------------------------------

  publish<N extends string>(
    userId: string,
    input: TypedEventInput<E, N>,
    options?: PublishWaitOptions,
  ): Promise<PublishResult> {
    // The map types `data` for the compiler only: it is any JSON, validated at run time.
    return this.publisher.publish(userId, input as EventInput, options);
  }

  publishBatch(items: readonly BatchItem[]): Promise<BatchResult[]> {
    return this.publisher.publishBatch(items);
  }

  broadcast(event: string, data?: JsonValue): Promise<BroadcastResult> {
    return this.publisher.broadcast(event, data);
  }

  // ---- AG-UI streams ------------------------------------------------------

  /**
   * A stream of one run of the user, to attach to an SSE response
   * (`POST /v1/ag-ui/runs`); rejects, before anything is written, with 404
   * for a run the user does not have, 429/503 past the stream bounds.
   */
  openAguiStream(request: AguiStreamRequest): Promise<AguiRunStream> {
    return this.aguiStreams.open(request);
  }

  // ---- Runs ---------------------------------------------------------------

  readRun(userId: string, runId: string): Promise<RunSnapshot | null> {
    return this.runReader.readRun(userId, runId);
  }

  listRuns(userId: string, limit?: number): Promise<RunSnapshot[]> {
    return this.runReader.listRuns(userId, limit);
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
    options: { ip?: string; userAgent?: string; cursor?: ReadCursor; snapshots?: boolean } = {},
  ): Promise<ConnectionSnapshot> {
    if (!isValidUserId(user.userId))
      throw new GatewayError('bad_request', 'userId is malformed', 'userId');
    this.lifecycle.assertAccepting();
    await this.ready;
    // Fix (scenarios branch): a socket that is not open never emits 'close'
    // again, so adopting one left a ghost connection in the registry forever,
    // holding a slot of the user's limit. Refuse it instead. Everything from
    // here to the Connection's listeners being attached runs synchronously.
    if (ws.readyState !== ws.OPEN) {
      throw new GatewayError('bad_request', 'the socket is not open', 'ws');
    }
    const ip = options.ip ?? 'adopted';
    const connection = await this.connections_.open({
      transport: new SocketWriter(ws, null, this.connections_.coalescer),
      reservation: this.gate.reserveSlot(user.userId, ip),
      user,
      ip,
      userAgent: options.userAgent ?? null,
      cursor: options.cursor ?? { kind: 'acked' },
      snapshots: options.snapshots ?? false,
      corked: false,
    });
    return connection.snapshot();
  }

  /**
   * Resolves true as soon as the user has an open connection on this node
   * (at once if it has one), false after `timeoutMs`.
   */
  waitForConnection(userId: string, timeoutMs: number): Promise<boolean> {
    return this.operator.waitForConnection(userId, timeoutMs);
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
    return this.operator.closeConnection(userId, connectionId, code, reason);
  }

  connections(userId: string): ConnectionSnapshot[] {
    return this.operator.connections(userId);
  }

  connectionsEverywhere(userId: string): Promise<ConnectionSnapshot[]> {
    return this.operator.connectionsEverywhere(userId);
  }

  disconnectUserEverywhere(userId: string, code: number = CloseCode.TokenExpired): Promise<number> {
    return this.operator.disconnectUserEverywhere(userId, code);
  }

  disconnectUser(userId: string, code: number = CloseCode.TokenExpired, reason?: string): number {
    return this.operator.disconnectUser(userId, code, reason);
  }

  stats(): GatewayStats {
    return {
      node: this.nodeId,
      connections: this.registry.connectionCount,
      users: this.registry.userCount,
      ...this.stats_.snapshot(),
    };
  }

  readiness(): Readiness {
    const reasons = this.lifecycle.reasons();
    const health = this.broker.health();
    if (!health.healthy) reasons.push(`broker unavailable: ${health.reason ?? 'unknown'}`);
    reasons.push(...this.supervisor.unhealthyCritical());
    const readiness: Readiness = { ready: reasons.length === 0, reasons };
    if (health.persistence !== undefined) readiness.persistence = health.persistence;
    return readiness;
  }

  /** Open AG-UI streams on this node. */
  get aguiStreamCount(): number {
    return this.aguiStreams.size;
  }

  /** Registered connections (open or closing) on this node. */
  get connectionCount(): number {
    return this.registry.connectionCount;
  }

  async close(): Promise<void> {
    if (!this.lifecycle.beginDrain()) return;
    this.logger.info({ connections: this.registry.connectionCount }, 'draining');
    // Publishes already accepted finish first, so their events reach sockets.
    await this.lifecycle.idle();
    this.aguiStreams.interruptAll();
    for (const connection of [...this.registry.all()]) connection.close(CloseCode.GoingAway);
    await this.connections_.waitForEmpty(this.options.closeTimeoutMs + 1000);
    this.supervisor.stop();
    this.endpoint.close();
    if (this.ownsBroker) await this.broker.close();
    this.logger.info('drained');
  }
}
