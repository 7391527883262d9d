/**
 * The gateway's Prometheus metrics. Each gateway owns its own `Registry`
 * (no module-level state), so two gateways in one process never mix counts.
 *
 * Labels are small closed sets (outcomes, codes, kinds): never a user id,
 * connection id or anything a client controls.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type HandshakeOutcome =
  | 'accepted'
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'too_many_connections'
  | 'rate_limited'
  | 'unavailable'
  | 'error';

export class GatewayMetrics {
  readonly registry: Registry;
  readonly connections: Gauge;
  readonly users: Gauge;
  readonly handshakes: Counter<'outcome'>;
  readonly eventsPublished: Counter<'kind'>;
  readonly eventsDelivered: Counter;
  readonly eventsReplayed: Counter;
  readonly gaps: Counter;
  readonly acks: Counter;
  readonly ackTimeouts: Counter;
  readonly slowConsumerCloses: Counter;
  readonly coalescedEvents: Counter;
  readonly closes: Counter<'code'>;
  readonly badFrames: Counter<'reason'>;
  readonly broadcasts: Counter;
  readonly runGrammarViolations: Counter<'rule'>;
  readonly aguiStreams: Gauge;
  readonly aguiInterrupted: Counter<'reason'>;
  readonly deliveryLatency: Histogram;
  readonly brokerErrors: Counter<'op'>;
  readonly taskRuns: Counter<'task' | 'outcome'>;
  readonly taskHealthy: Gauge<'task'>;
  readonly persistenceProven: Gauge;
  readonly redisShardUp: Gauge<'shard'>;
  readonly redisShardSlots: Gauge<'shard'>;
  readonly redisShardFailovers: Gauge<'shard'>;
  readonly redisShardSlotMoves: Gauge<'shard'>;
  readonly pendingWaits: Gauge;
  readonly waitRefusals: Counter<'limit'>;
  readonly httpRequests: Counter<'route' | 'status'>;

  /**
   * Per-event counts of the hot path, kept as plain numbers and added to
   * their prom-client counters when a reader collects them (`collect`):
   * no label hashing per event. Read through the registry or `get()`, the
   * values are the same as with an `inc` per event.
   */
  private deliveredPending = 0;
  private publishedNewPending = 0;
  /**
   * The same for every connection's open and close (the connection-rate
   * profile showed prom-client's label hashing and gauge sets on each):
   * accepted handshakes, closes by code, and the last connection and user
   * counts, set on the gauges when collected.
   */
  private acceptedPending = 0;
  private readonly closesPending = new Map<number, number>();
  private openConnections = 0;
  private openUsers = 0;

  constructor(options: { registry?: Registry; defaultMetrics?: boolean; prefix?: string } = {}) {
    const registry = options.registry ?? new Registry();
    const p = options.prefix ?? 'agentsocket_';
    this.registry = registry;
    const registers = [registry];
    this.connections = new Gauge({
      name: `${p}connections`,
      help: 'Open WebSocket connections on this node',
      registers,
      collect: () => this.connections.set(this.openConnections),
    });
    this.users = new Gauge({
      name: `${p}users`,
      help: 'Users with at least one open connection on this node',
      registers,
      collect: () => this.users.set(this.openUsers),
    });
    this.handshakes = new Counter({
      name: `${p}handshakes_total`,
      help: 'WebSocket handshakes by outcome',
      labelNames: ['outcome'],
      registers,
      collect: () => this.flushAccepted(),
    });
    this.eventsPublished = new Counter({
      name: `${p}events_published_total`,
      help: 'Events published through this node (kind: new or duplicate)',
      labelNames: ['kind'],
      registers,
      collect: () => this.flushPublished(),
    });
    this.eventsDelivered = new Counter({
      name: `${p}events_delivered_total`,
      help: 'Event frames written to connections (live and replay)',
      registers,
      collect: () => this.flushDelivered(),
    });
    this.eventsReplayed = new Counter({
      name: `${p}events_replayed_total`,
      help: 'Event frames written from history on resume',
      registers,
    });
    this.gaps = new Counter({
      name: `${p}replay_gaps_total`,
      help: 'Resumes whose welcome reported gap: true',
      registers,
    });
    this.acks = new Counter({ name: `${p}acks_total`, help: 'Ack frames received', registers });
    this.ackTimeouts = new Counter({
      name: `${p}ack_timeouts_total`,
      help: 'Connections closed with 4408 for an unacked critical event',
      registers,
    });
    this.slowConsumerCloses = new Counter({
      name: `${p}slow_consumer_closes_total`,
      help: 'Connections closed with 4429 at the unsent-bytes limit',
      registers,
    });
    this.coalescedEvents = new Counter({
      name: `${p}coalesced_events_total`,
      help: 'Delta events merged into another event frame (lagging connections, replays)',
      registers,
    });
    this.closes = new Counter({
      name: `${p}closes_total`,
      help: 'Connection closes by close code',
      labelNames: ['code'],
      registers,
      collect: () => this.flushCloses(),
    });
    this.badFrames = new Counter({
      name: `${p}bad_frames_total`,
      help: 'Client frames refused, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.broadcasts = new Counter({
      name: `${p}broadcasts_total`,
      help: 'Broadcasts published through this node',
      registers,
    });
    this.runGrammarViolations = new Counter({
      name: `${p}run_grammar_violations_total`,
      help: 'Events of a run that broke the run grammar (refused in strict mode, published in warn), by rule',
      labelNames: ['rule'],
      registers,
    });
    this.aguiStreams = new Gauge({
      name: `${p}agui_streams`,
      help: 'Open AG-UI streams (POST /v1/ag-ui/runs) on this node',
      registers,
    });
    this.aguiInterrupted = new Counter({
      name: `${p}agui_streams_interrupted_total`,
      help: 'AG-UI streams ended with RUN_ERROR agentsocket.stream_interrupted, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.deliveryLatency = new Histogram({
      name: `${p}delivery_latency_seconds`,
      help: 'Time from publish to the write of a live event to a socket',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.brokerErrors = new Counter({
      name: `${p}broker_errors_total`,
      help: 'Broker operations that failed, by operation',
      labelNames: ['op'],
      registers,
    });
    this.taskRuns = new Counter({
      name: `${p}task_runs_total`,
      help: 'Background task runs by task and outcome',
      labelNames: ['task', 'outcome'],
      registers,
    });
    this.taskHealthy = new Gauge({
      name: `${p}task_healthy`,
      help: '1 when the background task is healthy, 0 when it keeps failing',
      labelNames: ['task'],
      registers,
    });
    this.persistenceProven = new Gauge({
      name: `${p}redis_persistence_proven`,
      help: "1 when the engine's persistence proves a restart keeps every acknowledged write (Redis appendonly yes + appendfsync always), else 0",
      registers,
    });
    // Redis Cluster, per shard (its master's host:port); a cluster has few shards.
    this.redisShardUp = new Gauge({
      name: `${p}redis_shard_up`,
      help: "1 when this node reaches the shard's master and it confirmed it is master, else 0",
      labelNames: ['shard'],
      registers,
    });
    this.redisShardSlots = new Gauge({
      name: `${p}redis_shard_slots`,
      help: 'Hash slots the shard serves, as this node last read the slot table',
      labelNames: ['shard'],
      registers,
    });
    this.redisShardFailovers = new Gauge({
      name: `${p}redis_shard_failovers_seen`,
      help: 'Failovers of the shard this node saw since it started (its streams moved to a new epoch)',
      labelNames: ['shard'],
      registers,
    });
    this.redisShardSlotMoves = new Gauge({
      name: `${p}redis_shard_slot_moves_seen`,
      help: 'Slots this node saw migrate to the shard since it started',
      labelNames: ['shard'],
      registers,
    });
    this.pendingWaits = new Gauge({
      name: `${p}publish_waits_pending`,
      help: 'Publishes waiting for delivery (?wait=) on this node',
      registers,
    });
    this.waitRefusals = new Counter({
      name: `${p}publish_wait_refusals_total`,
      help: 'Publishes with ?wait= refused with 429 too_many_waits, by the limit reached (user, node)',
      labelNames: ['limit'],
      registers,
    });
    this.httpRequests = new Counter({
      name: `${p}http_requests_total`,
      help: 'HTTP API requests by route and status',
      labelNames: ['route', 'status'],
      registers,
    });
    // Process metrics include event-loop lag (nodejs_eventloop_lag_*).
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  }

  /** `count` live event frames written (hot path; `eventsDelivered` when collected). */
  countDelivered(count: number): void {
    this.deliveredPending += count;
  }

  /** One new event published (hot path; `eventsPublished{kind="new"}` when collected). */
  countPublishedNew(): void {
    this.publishedNewPending++;
  }

  /** A handshake was accepted (per connection; `handshakes{outcome="accepted"}` when collected). */
  countAccepted(): void {
    this.acceptedPending++;
  }

  /** A connection closed with `code` (per connection; `closes{code}` when collected). */
  countClose(code: number): void {
    this.closesPending.set(code, (this.closesPending.get(code) ?? 0) + 1);
  }

  /** The node's open connections and users now (the `connections` and `users` gauges when collected). */
  setOpen(connections: number, users: number): void {
    this.openConnections = connections;
    this.openUsers = users;
  }

  private flushAccepted(): void {
    const pending = this.acceptedPending;
    if (pending === 0) return;
    this.acceptedPending = 0;
    this.handshakes.inc({ outcome: 'accepted' }, pending);
  }

  private flushCloses(): void {
    // Bounded by the close codes seen since the last collection (valid codes only).
    for (const [code, count] of this.closesPending) this.closes.inc({ code: String(code) }, count);
    this.closesPending.clear();
  }

  private flushDelivered(): void {
    const pending = this.deliveredPending;
    if (pending === 0) return;
    this.deliveredPending = 0;
    this.eventsDelivered.inc(pending);
  }

  private flushPublished(): void {
    const pending = this.publishedNewPending;
    if (pending === 0) return;
    this.publishedNewPending = 0;
    this.eventsPublished.inc({ kind: 'new' }, pending);
  }
}
