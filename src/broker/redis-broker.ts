/**
 * The Broker on Redis: any number of gateway nodes share user streams through
 * one Redis (or a Redis Cluster: every key of a user carries the hash tag
 * `{u:<userId>}`). Redis is the engine; there is no cluster protocol here.
 *
 * - History: one Redis stream per user (entry id `<seq>-0`), a meta hash
 *   (epoch, last seq, acked cursor) and an idempotency hash (id -> seq).
 * - Publish: one Lua script (`redis-scripts.ts`) assigns the seq, appends,
 *   trims, refreshes TTLs and PUBLISHes on the user's channel, atomically.
 * - Fan-out: a node SUBSCRIBEs a user's channel only while it holds a
 *   connection of that user; a `StreamFollower` per user turns the live
 *   messages into gap-free, duplicate-free `onEvent` calls, reading history
 *   to fill any gap (a cut subscriber link, a message that arrived early).
 * - Faults: commands fail fast with `BrokerUnavailableError` while Redis is
 *   unreachable (no offline queue, no silent retry); after the subscriber
 *   link comes back, every followed stream is caught up from history, or
 *   `onResync` is raised when history cannot prove continuity (data lost,
 *   new epoch).
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
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { ValidEvent } from '../protocol/event-input.js';
import {
  BrokerUnavailableError,
  encodeEventFrame,
  type Broker,
  type BrokerHandlers,
  type BrokerHealth,
  type ConnectionRecord,
  type ControlMessage,
  type DeliveryReport,
  type HistoryRead,
  type PublishOptions,
  type PublishOutcome,
  type ReadCursor,
  type StreamEvent,
} from './broker.js';
import { RedisKeys } from './redis-keys.js';
import { SCRIPTS, type LuaScript } from './redis-scripts.js';
import { StreamFollower } from './stream-follower.js';
import { isValidUserId } from '../protocol/user-id.js';

export interface RedisBrokerOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` for TLS. Required. */
  url: string;
  /** Prefix of every key and channel. Default `'agentsocket'`. */
  keyPrefix?: string;
  /** Events kept per user. Default 1000. */
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
  /** The clock for event `ts` and history expiry. Default `Date.now`. */
  clock?: () => number;
}

const KEY_PREFIX_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;
const NODE_ID_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;
/** The start of every `event` frame up to its seq; the Lua script writes the seq. */
const FRAME_HEAD = '{"type":"event","seq":';
/**
 * The meta hash lives 24 × `historyTtlMs` past its last use (publish, read,
 * ack), capped at 30 days unless the history itself lives longer.
 */
const MAX_META_TTL_MS = 30 * 24 * 3_600_000;
/** Redis errors that mean "not now" rather than "this command is wrong". */
const TRANSIENT_REPLY = /^(OOM|LOADING|READONLY|BUSY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|NOSCRIPT)\b/;

/** Reconnect delay: exponential from 50 ms to 2 s, with ±20 % jitter. */
export function reconnectDelay(attempt: number): number {
  const base = Math.min(2_000, 50 * 2 ** Math.min(attempt, 10));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  const chosen = value ?? fallback;
  if (!Number.isSafeInteger(chosen) || chosen < 1) {
    throw new RangeError(`RedisBroker: ${name} must be a positive integer, got ${String(value)}`);
  }
  return chosen;
}

/**
 * What may be logged of an error: its message. Never the error object: an
 * ioredis reply error carries `command.args`, which for AUTH is the password.
 */
function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Maps a client error to the contract's error: the engine could not do the step. */
function toBrokerError(error: unknown): Error {
  if (error instanceof BrokerUnavailableError) return error;
  if (error instanceof Error) {
    if (error.name === 'ReplyError' && !TRANSIENT_REPLY.test(error.message)) return error;
    return new BrokerUnavailableError(`redis unavailable: ${error.message}`);
  }
  return new BrokerUnavailableError('redis unavailable');
}

type LinkName = 'command' | 'subscriber';

interface Feed {
  /** Connections of the user on this node that asked for its events. */
  refs: number;
  /** Settles when the channel is subscribed and the follower positioned. */
  ready: Promise<void>;
  follower: StreamFollower;
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

/** One stream entry as XRANGE returns it: `[id, [field, value, …]]`. */
function decodeEntry(entry: unknown): StreamEvent {
  if (!Array.isArray(entry) || typeof entry[0] !== 'string' || !isStringArray(entry[1])) {
    throw new Error('RedisBroker: malformed history entry');
  }
  const fields = new Map<string, string>();
  const flat = entry[1];
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(flat[i] as string, flat[i + 1] as string);
  const awaitedBy = fields.get('a') ?? '';
  return {
    seq: Number.parseInt(entry[0], 10),
    id: fields.get('i') ?? '',
    event: fields.get('e') ?? '',
    critical: fields.get('c') === '1',
    ts: Number(fields.get('t') ?? 0),
    frame: fields.get('f') ?? '',
    ...(awaitedBy !== '' ? { awaitedBy } : {}),
  };
}

/** A live message: `epoch\nseq\nid\nevent\ncritical\nts\nawaitedBy\nframe` (the frame last). */
function decodeLive(message: string): { epoch: string; event: StreamEvent } | undefined {
  const parts: string[] = [];
  let start = 0;
  for (let i = 0; i < 7; i++) {
    const end = message.indexOf('\n', start);
    if (end < 0) return undefined;
    parts.push(message.slice(start, end));
    start = end + 1;
  }
  const [epoch, seq, id, event, critical, ts, awaitedBy] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  return {
    epoch,
    event: {
      seq: Number.parseInt(seq, 10),
      id,
      event,
      critical: critical === '1',
      ts: Number(ts),
      frame: message.slice(start),
      ...(awaitedBy !== '' ? { awaitedBy } : {}),
    },
  };
}

/** A pub/sub message as a JSON object, or undefined: messages from the wire are checked, never trusted. */
function parseObject(message: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(message);
    return typeof value === 'object' && value !== null
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function decodeReport(message: string): DeliveryReport | undefined {
  const r = parseObject(message);
  if (r === undefined) return undefined;
  if (
    typeof r.userId !== 'string' ||
    typeof r.id !== 'string' ||
    typeof r.seq !== 'number' ||
    typeof r.epoch !== 'string' ||
    typeof r.awaitedBy !== 'string' ||
    (r.kind !== 'written' && r.kind !== 'acked') ||
    typeof r.connections !== 'number'
  ) {
    return undefined;
  }
  return {
    userId: r.userId,
    id: r.id,
    seq: r.seq,
    epoch: r.epoch,
    awaitedBy: r.awaitedBy,
    kind: r.kind,
    connections: r.connections,
  };
}

function decodeControl(message: string): ControlMessage | undefined {
  const m = parseObject(message);
  if (m === undefined) return undefined;
  // A close code a server may send: 1000, 1001, 1012, or an application code (ws throws on others).
  const code = m.code;
  const closeCode =
    typeof code === 'number' &&
    ([1000, 1001, 1012].includes(code) || (code >= 3000 && code <= 4999));
  if (
    m.kind !== 'disconnect' ||
    !isValidUserId(m.userId) ||
    !closeCode ||
    !Number.isInteger(code)
  ) {
    return undefined;
  }
  return { kind: 'disconnect', userId: m.userId as string, code: m.code as number };
}

/** A directory value, `node\ndeadline\nsnapshot`, if its deadline is after `now`. */
function decodeRecord(
  connectionId: string,
  value: string,
  now: number,
): ConnectionRecord | undefined {
  const first = value.indexOf('\n');
  const second = value.indexOf('\n', first + 1);
  if (first < 0 || second < 0) return undefined;
  if (Number(value.slice(first + 1, second)) <= now) return undefined;
  return { node: value.slice(0, first), connectionId, snapshot: value.slice(second + 1) };
}

function newEpoch(): string {
  return `e_${randomBytes(8).toString('hex')}`;
}

export class RedisBroker implements Broker {
  readonly nodeId: string;
  private readonly url: string;
  private readonly keys: RedisKeys;
  private readonly historySize: number;
  private readonly historyTtlMs: number;
  /** TTL of a user's meta hash: it outlives the events (see redis-scripts.ts). */
  private readonly metaTtlMs: number;
  private readonly commandTimeoutMs: number;
  private readonly maxSubscriptions: number;
  private readonly maxPendingPerUser: number;
  private readonly logger: Logger | undefined;
  private readonly clock: () => number;

  private command: Redis | undefined;
  private subscriber: Redis | undefined;
  private handlers: BrokerHandlers | undefined;
  private readonly feeds = new Map<string, Feed>();
  private readonly links: Record<LinkName, string> = {
    command: 'connecting',
    subscriber: 'connecting',
  };
  /** Counts the subscriber link's connections: a restore of an older one is void. */
  private subscriberGeneration = 0;
  /** The subscribing of the subscriber link's latest connection; never rejects. */
  private subscribing: Promise<void> = Promise.resolve();
  /** The last error logged per link, so a reconnect loop logs it once. */
  private readonly lastLinkError: Record<LinkName, string | undefined> = {
    command: undefined,
    subscriber: undefined,
  };
  private lastHealthy = false;
  private closed = false;

  constructor(options: RedisBrokerOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('RedisBroker: options are required');
    }
    if (typeof options.url !== 'string' || !/^rediss?:\/\//.test(options.url)) {
      throw new TypeError('RedisBroker: url must start with redis:// or rediss://');
    }
    this.url = options.url;
    const prefix = options.keyPrefix ?? 'agentsocket';
    if (!KEY_PREFIX_PATTERN.test(prefix)) {
      throw new TypeError('RedisBroker: keyPrefix must be 1-64 characters of [A-Za-z0-9._:-]');
    }
    this.keys = new RedisKeys(prefix);
    this.historySize = positiveInteger('historySize', options.historySize, 1_000);
    this.historyTtlMs = positiveInteger('historyTtlMs', options.historyTtlMs, 3_600_000);
    this.metaTtlMs = Math.max(this.historyTtlMs, Math.min(this.historyTtlMs * 24, MAX_META_TTL_MS));
    this.commandTimeoutMs = positiveInteger('commandTimeoutMs', options.commandTimeoutMs, 2_000);
    this.maxSubscriptions = positiveInteger('maxSubscriptions', options.maxSubscriptions, 100_000);
    this.maxPendingPerUser = positiveInteger('maxPendingPerUser', options.maxPendingPerUser, 1_000);
    const nodeId = options.nodeId ?? `n_${randomBytes(6).toString('hex')}`;
    if (!NODE_ID_PATTERN.test(nodeId)) {
      throw new TypeError('RedisBroker: nodeId must be 1-64 characters of [A-Za-z0-9._:-]');
    }
    this.nodeId = nodeId;
    this.logger = options.logger;
    this.clock = options.clock ?? Date.now;
  }

  /**
   * Connects both links (commands, and subscriptions) and subscribes the
   * shared channels. Resolves once the first connection attempt of each link
   * has settled, whether Redis answered or not: an engine that is unreachable
   * at boot is not a failure to start. The links keep reconnecting
   * (`reconnectDelay`), `health()` reports why the broker is not usable, and
   * every step rejects with `BrokerUnavailableError` until Redis answers; the
   * node then recovers by itself, without a restart.
   */
  async start(handlers: BrokerHandlers): Promise<void> {
    if (this.handlers !== undefined) throw new Error('RedisBroker: start() was already called');
    this.handlers = handlers;
    const base: RedisOptions = {
      lazyConnect: true,
      // Fail fast while Redis is unreachable: a command is never parked in a
      // queue to run later, and one in flight when the link drops is rejected
      // at once. The caller sees BrokerUnavailableError and may retry (a
      // publish retried with the same id cannot be applied twice).
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      // Subscriptions are restored by this class, awaited, before the
      // catch-up reads history: ioredis's own resubscribe is not awaited, so a
      // message published between our history read and its SUBSCRIBE would be lost.
      autoResubscribe: false,
      commandTimeout: this.commandTimeoutMs,
      connectTimeout: Math.max(this.commandTimeoutMs, 1_000),
      retryStrategy: reconnectDelay,
    };
    const command = new Redis(this.url, { ...base, connectionName: `agentsocket-${this.nodeId}` });
    const subscriber = new Redis(this.url, {
      ...base,
      connectionName: `agentsocket-${this.nodeId}-sub`,
    });
    this.command = command;
    this.subscriber = subscriber;
    this.watch('command', command);
    this.watch('subscriber', subscriber);
    subscriber.on('message', (channel: string, message: string) =>
      this.onMessage(channel, message),
    );
    const attempts = await Promise.allSettled([command.connect(), subscriber.connect()]);
    attempts.forEach((attempt, i) => {
      if (attempt.status === 'fulfilled') return;
      this.logger?.warn(
        { err: errorMessage(attempt.reason), link: i === 0 ? 'command' : 'subscriber' },
        'redis broker: Redis unreachable at start, reconnecting',
      );
    });
    // The subscriber's `ready` started subscribing the shared channels.
    await this.subscribing;
  }

  async publish(
    userId: string,
    event: ValidEvent,
    options: PublishOptions = {},
  ): Promise<PublishOutcome> {
    const command = this.requireCommand();
    const awaitedBy = options.awaitedBy ?? '';
    if (awaitedBy !== '' && !NODE_ID_PATTERN.test(awaitedBy)) {
      throw new TypeError('RedisBroker: awaitedBy must be a node id');
    }
    const id = event.id ?? `ev_${randomBytes(12).toString('hex')}`;
    const ts = this.clock();
    // Encode once: the frame is built here without its seq, the script adds it.
    const frame = encodeEventFrame(0, id, ts, event);
    if (!frame.startsWith(`${FRAME_HEAD}0,`)) throw new Error('RedisBroker: unexpected frame');
    const result = await this.run(command, SCRIPTS.publish, this.keys.user(userId), [
      newEpoch(),
      id,
      event.event,
      event.critical ? '1' : '0',
      ts,
      frame.slice(FRAME_HEAD.length + 1),
      awaitedBy,
      this.historySize,
      this.historyTtlMs,
      ts - this.historyTtlMs,
      this.keys.userChannel(userId),
      this.metaTtlMs,
    ]);
    if (!Array.isArray(result) || typeof result[0] !== 'number' || typeof result[1] !== 'string') {
      throw new Error('RedisBroker: malformed publish reply');
    }
    return { seq: result[0], epoch: result[1], id, duplicate: result[2] === 1 };
  }

  async broadcast(frame: string): Promise<void> {
    const command = this.requireCommand();
    try {
      await command.publish(this.keys.broadcast, frame);
    } catch (error) {
      throw toBrokerError(error);
    }
  }

  async subscribe(userId: string): Promise<void> {
    const subscriber = this.requireSubscriber();
    const existing = this.feeds.get(userId);
    if (existing !== undefined) {
      existing.refs++;
      await existing.ready;
      return;
    }
    if (this.feeds.size >= this.maxSubscriptions) {
      throw new BrokerUnavailableError(
        `this node follows ${this.maxSubscriptions} users already (maxSubscriptions)`,
      );
    }
    const follower = new StreamFollower({
      maxPending: this.maxPendingPerUser,
      readAfter: async (seq, epoch) => this.readHistory(userId, { kind: 'position', seq, epoch }),
      onEvent: (epoch, event) => this.deliver(() => this.handlers?.onEvent(userId, epoch, event)),
      onResync: () => this.deliver(() => this.handlers?.onResync(userId)),
      onCatchUpError: (error) =>
        this.logger?.warn({ err: errorMessage(error) }, 'redis broker: catch-up failed, retrying'),
      retryDelayMs: reconnectDelay,
    });
    const feed: Feed = { refs: 1, follower, ready: Promise.resolve() };
    this.feeds.set(userId, feed);
    feed.ready = (async () => {
      try {
        await subscriber.subscribe(this.keys.userChannel(userId));
        const head = await this.readHead(userId);
        follower.start(head.epoch, head.headSeq);
      } catch (error) {
        if (this.feeds.get(userId) === feed) {
          this.feeds.delete(userId);
          follower.close();
          subscriber.unsubscribe(this.keys.userChannel(userId)).catch(() => undefined);
        }
        throw toBrokerError(error);
      }
    })();
    await feed.ready;
  }

  async unsubscribe(userId: string): Promise<void> {
    const feed = this.feeds.get(userId);
    if (feed === undefined) return;
    feed.refs--;
    if (feed.refs > 0) return;
    this.feeds.delete(userId);
    feed.follower.close();
    try {
      await this.subscriber?.unsubscribe(this.keys.userChannel(userId));
    } catch (error) {
      // The follower is gone, so stray messages are ignored; a link that is
      // down drops the subscription itself and it is not restored.
      this.logger?.warn({ err: errorMessage(error) }, 'redis broker: unsubscribe failed');
    }
  }

  async readHistory(userId: string, cursor: ReadCursor): Promise<HistoryRead> {
    const command = this.requireCommand();
    const now = this.clock();
    const result = await this.run(command, SCRIPTS.read, this.keys.user(userId), [
      newEpoch(),
      cursor.kind,
      cursor.kind === 'position' ? cursor.seq : 0,
      cursor.kind === 'position' ? cursor.epoch : '',
      this.historySize,
      this.metaTtlMs,
      now - this.historyTtlMs,
    ]);
    if (
      !Array.isArray(result) ||
      typeof result[0] !== 'string' ||
      typeof result[1] !== 'number' ||
      typeof result[2] !== 'number' ||
      typeof result[3] !== 'number' ||
      !Array.isArray(result[5])
    ) {
      throw new Error('RedisBroker: malformed history reply');
    }
    return {
      epoch: result[0],
      headSeq: result[1],
      ackedSeq: result[2],
      from: result[3],
      gap: result[4] === 1,
      events: (result[5] as unknown[]).map(decodeEntry),
    };
  }

  /** An ack with `epoch` counts only while the stream is in that epoch (Broker.ack). */
  async ack(userId: string, seq: number, epoch?: string): Promise<void> {
    const command = this.requireCommand();
    if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError('seq must be an integer >= 0');
    const [meta] = this.keys.user(userId);
    await this.run(command, SCRIPTS.ack, [meta], [seq, epoch ?? '', this.metaTtlMs]);
  }

  async reportDelivery(report: DeliveryReport): Promise<void> {
    const command = this.requireCommand();
    if (!NODE_ID_PATTERN.test(report.awaitedBy)) return;
    try {
      await command.publish(this.keys.nodeChannel(report.awaitedBy), JSON.stringify(report));
    } catch (error) {
      throw toBrokerError(error);
    }
  }

  /** PUBLISHes `message` on the control channel, which every node (this one included) follows. */
  async control(message: ControlMessage): Promise<void> {
    const command = this.requireCommand();
    try {
      await command.publish(this.keys.control, JSON.stringify(message));
    } catch (error) {
      throw toBrokerError(error);
    }
  }

  /**
   * Replaces this node's records in the user's directory (one script: prune,
   * write, refresh the hash's TTL). Bounded: a user's directory holds at most
   * its connections on live nodes, plus records not yet past their deadline.
   */
  async putConnections(
    userId: string,
    records: readonly ConnectionRecord[],
    ttlMs: number,
  ): Promise<void> {
    const command = this.requireCommand();
    const ttl = positiveInteger('ttlMs', ttlMs, ttlMs);
    const now = this.clock();
    const args: (string | number)[] = [this.nodeId, now, now + ttl, ttl];
    for (const record of records) args.push(record.connectionId, record.snapshot);
    await this.run(command, SCRIPTS.putConnections, [this.keys.connections(userId)], args);
  }

  /** Every node's records of the user whose deadline has not passed. */
  async listConnections(userId: string): Promise<ConnectionRecord[]> {
    const command = this.requireCommand();
    let all: Record<string, string>;
    try {
      all = await command.hgetall(this.keys.connections(userId));
    } catch (error) {
      throw toBrokerError(error);
    }
    const now = this.clock();
    const records: ConnectionRecord[] = [];
    for (const [connectionId, value] of Object.entries(all)) {
      const record = decodeRecord(connectionId, value, now);
      if (record !== undefined) records.push(record);
    }
    return records;
  }

  /**
   * Writes this node's figure and drops the figures of nodes past their
   * deadline (dead nodes), in one script: the hash holds at most the live
   * nodes, and a figure is pruned only on what the hash holds at that moment.
   * The hash's TTL is refreshed: it is gone with the last live node.
   */
  async putNodeLoad(connections: number, ttlMs: number): Promise<void> {
    const command = this.requireCommand();
    const ttl = positiveInteger('ttlMs', ttlMs, ttlMs);
    if (!Number.isSafeInteger(connections) || connections < 0) {
      throw new RangeError('connections must be an integer >= 0');
    }
    const now = this.clock();
    await this.run(
      command,
      SCRIPTS.putNodeLoad,
      [this.keys.nodeLoads],
      [this.nodeId, now, now + ttl, connections, ttl],
    );
  }

  async nodeLoads(): Promise<Map<string, number>> {
    const command = this.requireCommand();
    let all: Record<string, string>;
    try {
      all = await command.hgetall(this.keys.nodeLoads);
    } catch (error) {
      throw toBrokerError(error);
    }
    const now = this.clock();
    const loads = new Map<string, number>();
    for (const [node, value] of Object.entries(all)) {
      const [deadline, count] = value.split('\n').map(Number);
      if (deadline !== undefined && deadline > now && Number.isSafeInteger(count)) {
        loads.set(node, count as number);
      }
    }
    return loads;
  }

  health(): BrokerHealth {
    if (this.closed) return { healthy: false, reason: 'redis broker closed' };
    for (const name of ['command', 'subscriber'] as const) {
      if (this.links[name] !== 'ready') {
        return { healthy: false, reason: `redis ${name} link ${this.links[name]}` };
      }
    }
    return { healthy: true };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const feed of this.feeds.values()) feed.follower.close();
    this.feeds.clear();
    await Promise.all(
      [this.command, this.subscriber].map(async (client) => {
        if (client === undefined) return;
        try {
          await client.quit();
        } catch {
          client.disconnect();
        }
      }),
    );
    this.reportHealth();
  }

  /** Users followed on this node (bounded by `maxSubscriptions`). */
  get subscriptionCount(): number {
    return this.feeds.size;
  }

  private requireCommand(): Redis {
    if (this.closed) throw new BrokerUnavailableError('redis broker closed');
    if (this.command === undefined) throw new Error('RedisBroker: start() first');
    return this.command;
  }

  private requireSubscriber(): Redis {
    if (this.closed) throw new BrokerUnavailableError('redis broker closed');
    if (this.subscriber === undefined) throw new Error('RedisBroker: start() first');
    return this.subscriber;
  }

  /** EVALSHA, with EVAL when the server lost its script cache (a restart). */
  private async run(
    client: Redis,
    script: LuaScript,
    keys: string[],
    args: (string | number)[],
  ): Promise<unknown> {
    try {
      try {
        return await client.evalsha(script.sha, script.keys, ...keys, ...args);
      } catch (error) {
        if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
        return await client.eval(script.source, script.keys, ...keys, ...args);
      }
    } catch (error) {
      throw toBrokerError(error);
    }
  }

  private async readHead(userId: string): Promise<{ epoch: string; headSeq: number }> {
    const command = this.requireCommand();
    const now = this.clock();
    const result = await this.run(command, SCRIPTS.read, this.keys.user(userId), [
      newEpoch(),
      'head',
      0,
      '',
      this.historySize,
      this.metaTtlMs,
      now - this.historyTtlMs,
    ]);
    if (!Array.isArray(result) || typeof result[0] !== 'string' || typeof result[1] !== 'number') {
      throw new Error('RedisBroker: malformed head reply');
    }
    return { epoch: result[0], headSeq: result[1] };
  }

  private onMessage(channel: string, message: string): void {
    if (this.closed || this.handlers === undefined) return;
    if (channel === this.keys.broadcast) {
      const handlers = this.handlers;
      this.deliver(() => handlers.onBroadcast(message));
      return;
    }
    if (channel === this.keys.control) {
      const command = decodeControl(message);
      const handlers = this.handlers;
      if (command !== undefined) this.deliver(() => handlers.onControl?.(command));
      return;
    }
    if (channel === this.keys.nodeChannel(this.nodeId)) {
      const report = decodeReport(message);
      const handlers = this.handlers;
      if (report !== undefined) this.deliver(() => handlers.onDelivery(report));
      return;
    }
    const userId = this.keys.userOfChannel(channel);
    const feed = userId === undefined ? undefined : this.feeds.get(userId);
    if (feed === undefined) return;
    const live = decodeLive(message);
    if (live === undefined || !Number.isSafeInteger(live.event.seq)) return;
    feed.follower.live(live.epoch, live.event);
  }

  /** Runs a handler; a throwing handler is logged, never breaks the broker. */
  private deliver(call: () => void): void {
    try {
      call();
    } catch (error) {
      this.logger?.error({ err: errorMessage(error) }, 'redis broker: a handler threw');
    }
  }

  private watch(name: LinkName, client: Redis): void {
    client.on('error', (error: unknown) => {
      // The message only: a reply error carries its command, and AUTH's
      // arguments hold the password. Repeats (one per reconnect attempt) are
      // logged once until the link is ready again.
      const message = errorMessage(error);
      if (this.closed || this.lastLinkError[name] === message) return;
      this.lastLinkError[name] = message;
      this.logger?.warn({ err: message, link: name }, 'redis broker: link error');
    });
    client.on('close', () => this.setLink(name, 'closed'));
    client.on('reconnecting', () => this.setLink(name, 'reconnecting'));
    client.on('end', () => this.setLink(name, 'ended'));
    client.on('ready', () => {
      this.lastLinkError[name] = undefined;
      if (name === 'command') {
        this.setLink(name, 'ready');
        return;
      }
      // Every `ready`, the first one included: subscribe the channels again.
      this.setLink(name, 'subscribing');
      this.subscribing = this.restoreSubscriptions(client, ++this.subscriberGeneration);
    });
  }

  /**
   * After the subscriber link (re)connects: subscribe every channel, and only
   * then catch every followed stream up from history, so nothing published
   * during the cut, or between the two steps, is missed. A SUBSCRIBE that
   * fails while the link stays up (a timeout) forces a reconnect, whose
   * `ready` tries again after `reconnectDelay`: the link never stays
   * half-subscribed.
   */
  private async restoreSubscriptions(client: Redis, generation: number): Promise<void> {
    const users = [...this.feeds.keys()];
    try {
      await client.subscribe(
        this.keys.broadcast,
        this.keys.control,
        this.keys.nodeChannel(this.nodeId),
        ...users.map((userId) => this.keys.userChannel(userId)),
      );
    } catch (error) {
      if (this.closed || generation !== this.subscriberGeneration) return;
      this.logger?.warn(
        { err: errorMessage(error) },
        'redis broker: subscribe failed, reconnecting',
      );
      if (client.status === 'ready') client.disconnect(true);
      return;
    }
    // A newer connection restores everything itself.
    if (this.closed || generation !== this.subscriberGeneration) return;
    for (const feed of this.feeds.values()) feed.follower.catchUp();
    this.setLink('subscriber', 'ready');
    if (generation > 1) {
      this.logger?.info({ users: users.length }, 'redis broker: subscriptions restored');
    }
  }

  private setLink(name: LinkName, state: string): void {
    if (this.links[name] === state) return;
    const wasReady = this.links[name] === 'ready';
    this.links[name] = state;
    if (wasReady && !this.closed) {
      this.logger?.warn({ link: name, state }, 'redis broker: link lost');
    }
    this.reportHealth();
  }

  private reportHealth(): void {
    const health = this.health();
    if (health.healthy === this.lastHealthy) return;
    this.lastHealthy = health.healthy;
    const handlers = this.handlers;
    if (handlers?.onHealthChange !== undefined) {
      this.deliver(() => handlers.onHealthChange?.(health.healthy, health.reason));
    }
  }
}
