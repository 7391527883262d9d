/**
 * The stream engine on Redis: one Redis stream per user (entry id `<seq>-0`),
 * a meta hash (epoch, last seq, acked cursor) and an idempotency hash, all
 * under the user's hash tag; publish, read and ack are one Lua script each
 * (`scripts.ts`), so "assign seq, append, trim, fan out" is one step. The
 * publishes of one event-loop turn share a script call (`publish-batch.ts`).
 *
 * Fan-out: a node SUBSCRIBEs a user's channel only while it holds a
 * connection of that user; a `StreamFollower` per user turns the live
 * messages into gap-free, duplicate-free `onEvent` calls, reading history to
 * fill any gap (a cut subscriber link, a message that arrived early), or
 * raises `onResync` when history cannot prove continuity (data lost, new epoch).
 */

import type { Logger } from 'pino';
import type { EncodedEvent } from '../../protocol/event-frame.js';
import { BrokerUnavailableError } from '../broker.js';
import { IdSource } from '../id-source.js';
import type {
  HistoryRead,
  PublishOptions,
  PublishOutcome,
  ReadCursor,
  StreamEngine,
  StreamEvent,
  StreamHandlers,
} from '../stream-engine.js';
import type { RedisKeys } from './keys.js';
import type { EngineLinks } from './engine-links.js';
import { errorMessage, reconnectDelay, toBrokerError } from './links.js';
import { InFlightGate } from './in-flight-gate.js';
import { decodeHistoryRead } from './read-reply.js';
import { PublishBatcher, type BatchLimits } from './publish-batch.js';
import { PUBLISH_CLUSTER_KEYS_PER_EVENT, PUBLISH_KEYS_PER_EVENT } from './publish-script.js';
import { StreamFollower } from './stream-follower.js';
import { decodeLive, decodePublishReply, runLogRecordTail } from './wire.js';

/** A node id, and so a valid `awaitedBy`. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;

export interface RedisStreamOptions {
  historySize: number;
  historyTtlMs: number;
  runTtlMs: number;
  maxRunsPerUser: number;
  /** TTL of a user's meta hash: it outlives the events (see scripts.ts). */
  metaTtlMs: number;
  maxSubscriptions: number;
  maxPendingPerUser: number;
  clock: () => number;
  logger: Logger | undefined;
  /** Bounds of one publish script call (`publish-batch.ts`). */
  batch: BatchLimits;
  /**
   * Bound the publish calls and history reads in flight (one Redis). Not on
   * Redis Cluster: a node-wide gate would let one shard that stops answering
   * hold every slot (each for its command timeout), and so stall the users
   * of the healthy shards too.
   */
  boundInFlight: boolean;
  /**
   * Give the publish script every key of an event, not only its meta key
   * (Redis Cluster: `PUBLISH_CLUSTER_KEYS_PER_EVENT`).
   */
  declareEveryKey: boolean;
}

/**
 * History reads in flight on a node at most (a resume storm's reads, catch-ups);
 * later ones wait, at most `MAX_READS_WAITING` (`in-flight-gate.ts`).
 */
const MAX_READS_IN_FLIGHT = 32;
const MAX_READS_WAITING = 20_000;

/** Bytes counted per event on top of its payload, name, id, run id, run log record and key name (epoch, flags, numbers). */
const BATCH_ENTRY_OVERHEAD = 64;

interface Feed {
  /** Connections of the user on this node that asked for its events. */
  refs: number;
  /** Settles when the channel is subscribed (the follower positions itself: `stream-follower.ts`). */
  ready: Promise<void>;
  follower: StreamFollower;
}

export class RedisStream implements StreamEngine {
  private readonly feeds = new Map<string, Feed>();
  private readonly ids = new IdSource();
  private handlers: StreamHandlers | undefined;
  private closed = false;
  private readonly batcher: PublishBatcher;
  private readonly reads: InFlightGate;

  constructor(
    private readonly links: EngineLinks,
    private readonly keys: RedisKeys,
    private readonly options: RedisStreamOptions,
  ) {
    const { historySize, historyTtlMs, metaTtlMs, runTtlMs, maxRunsPerUser, clock } = options;
    // The publish script's constant arguments (`publish-script.ts`): the age
    // cutoff from the batch's oldest event, so that every event of the batch
    // is younger than it (as a single publish's own event is).
    this.batcher = new PublishBatcher(
      links,
      (oldestTs, count) => [
        historySize,
        historyTtlMs,
        oldestTs - historyTtlMs,
        metaTtlMs,
        clock(),
        runTtlMs,
        maxRunsPerUser,
        count,
        options.declareEveryKey ? PUBLISH_CLUSTER_KEYS_PER_EVENT : PUBLISH_KEYS_PER_EVENT,
      ],
      options.batch,
      options.boundInFlight,
    );
    this.reads = new InFlightGate(
      'history reads',
      options.boundInFlight ? MAX_READS_IN_FLIGHT : Infinity,
      MAX_READS_WAITING,
    );
  }

  /** Called after a publish whose run log grew past the compaction threshold (`runs.ts`). */
  onLongRunLog: ((userId: string, runId: string, length: number) => void) | undefined;

  /** Where live events and resyncs go from now on. */
  attach(handlers: StreamHandlers): void {
    this.handlers = handlers;
  }

  async publish(
    userId: string,
    event: EncodedEvent,
    options: PublishOptions = {},
  ): Promise<PublishOutcome> {
    const awaitedBy = options.awaitedBy ?? '';
    if (awaitedBy !== '' && !NODE_ID_PATTERN.test(awaitedBy)) {
      throw new TypeError('RedisBroker: awaitedBy must be a node id');
    }
    // Generated ids start with `ev_`, which validation refuses in a
    // publisher's id, so they never collide with one (nor repeat: the
    // script neither looks them up nor keeps them for idempotency).
    const generated = event.id === undefined;
    const id = event.id ?? this.ids.eventId();
    const ts = this.options.clock();
    const { run } = event;
    const runId = run?.runId ?? '';
    const logTail = run === undefined ? '' : runLogRecordTail(event.event, run);
    // On one Redis the meta key only: the script derives the user's other
    // keys and channel from it (`publish-script.ts`).
    const meta = this.keys.meta(userId);
    let keys: string[] = [meta];
    let keyBytes = meta.length;
    if (this.options.declareEveryKey) {
      const [, hist, ids] = this.keys.user(userId);
      keys = [meta, hist, ids, this.keys.connections(userId), ...this.keys.run(userId, runId)];
      keyBytes = 0;
      for (const key of keys) keyBytes += key.length;
    }
    let result: unknown;
    try {
      result = await this.batcher.add({
        userId,
        keys,
        args: [
          this.ids.epoch(),
          id,
          event.event,
          event.critical ? '1' : '0',
          ts,
          event.payload,
          awaitedBy,
          generated ? '1' : '0',
          runId,
          run?.grammarArg ?? '',
          options.runGrammar ?? 'strict',
          logTail,
        ],
        ts,
        // Key names grow with the user id (up to 128 characters): counted, not guessed.
        bytes:
          Buffer.byteLength(event.payload) +
          Buffer.byteLength(logTail) +
          event.event.length +
          id.length +
          keyBytes +
          runId.length +
          BATCH_ENTRY_OVERHEAD,
      });
    } catch (error) {
      throw toBrokerError(error);
    }
    let outcome: PublishOutcome;
    try {
      outcome = decodePublishReply(result, id);
    } catch (error) {
      // An event's own Redis error reads as the call's would; a refusal of
      // the run grammar, or a malformed reply, as it is.
      throw error instanceof Error && error.name === 'ReplyError' ? toBrokerError(error) : error;
    }
    const logLength = Array.isArray(result) ? result[7] : 0;
    if (run !== undefined && typeof logLength === 'number' && logLength > 0) {
      this.onLongRunLog?.(userId, run.runId, logLength);
    }
    return outcome;
  }

  async readHistory(userId: string, cursor: ReadCursor): Promise<HistoryRead> {
    return decodeHistoryRead(await this.read(userId, cursor.kind, cursor));
  }

  /** An ack with `epoch` counts only while the stream is in that epoch (StreamEngine.ack). */
  async ack(userId: string, seq: number, epoch?: string): Promise<void> {
    const command = this.links.command;
    if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError('seq must be an integer >= 0');
    const [meta] = this.keys.user(userId);
    try {
      this.links.holdCommands(userId);
      await command.agentsocketAck(meta, seq, epoch ?? '', this.options.metaTtlMs);
    } catch (error) {
      throw toBrokerError(error);
    }
  }

  async subscribe(userId: string): Promise<void> {
    const existing = this.feeds.get(userId);
    if (existing !== undefined) {
      existing.refs++;
      await existing.ready;
      return;
    }
    if (this.feeds.size >= this.options.maxSubscriptions) {
      throw new BrokerUnavailableError(
        `this node follows ${this.options.maxSubscriptions} users already (maxSubscriptions)`,
      );
    }
    const { logger } = this.options;
    const follower = new StreamFollower({
      maxPending: this.options.maxPendingPerUser,
      readAfter: async (seq, epoch) => this.readHistory(userId, { kind: 'position', seq, epoch }),
      readHead: async () => this.readHead(userId),
      onEvent: (epoch, event) => this.deliverEvent(userId, epoch, event),
      onResync: () => this.deliver(() => this.handlers?.onResync(userId)),
      onCatchUpError: (error) =>
        logger?.warn({ err: errorMessage(error) }, 'redis broker: catch-up failed, retrying'),
      retryDelayMs: reconnectDelay,
    });
    const feed: Feed = { refs: 1, follower, ready: Promise.resolve() };
    this.feeds.set(userId, feed);
    feed.ready = (async () => {
      try {
        // No head read: the first message positions the follower, and the
        // caller's own history read follows (docs/performance.md, "Resume
        // storm on Redis").
        await this.links.follow(this.keys.userChannel(userId));
      } catch (error) {
        if (this.feeds.get(userId) === feed) {
          this.feeds.delete(userId);
          follower.close();
          this.links.unfollow(this.keys.userChannel(userId)).catch(() => undefined);
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
      await this.links.unfollow(this.keys.userChannel(userId));
    } catch (error) {
      // The follower is gone, so stray messages are ignored; a link that is
      // down drops the subscription itself and it is not restored.
      this.options.logger?.warn({ err: errorMessage(error) }, 'redis broker: unsubscribe failed');
    }
  }

  /** Redis expires a user's keys by itself (their TTLs): nothing to sweep. */
  async sweep(): Promise<number> {
    return 0;
  }

  /** The user channels the subscriber link must hold. */
  channels(): string[] {
    return [...this.feeds.keys()].map((userId) => this.keys.userChannel(userId));
  }

  /** After the subscriber link came back: every followed stream reads what it missed. */
  catchUpAll(): void {
    for (const feed of this.feeds.values()) feed.follower.catchUp();
  }

  /** These user channels were subscribed again (a slot moved): their streams read what they missed. */
  catchUpChannels(channels: readonly string[]): void {
    for (const channel of channels) {
      const userId = this.keys.userOfChannel(channel);
      if (userId !== undefined) this.feeds.get(userId)?.follower.catchUp();
    }
  }

  /** A message on a user channel; false when `channel` is not one. */
  onMessage(channel: string, message: string): boolean {
    const userId = this.keys.userOfChannel(channel);
    if (userId === undefined) return false;
    const feed = this.feeds.get(userId);
    if (feed === undefined) return true;
    const live = decodeLive(message);
    if (live === undefined || !Number.isSafeInteger(live.event.seq)) return true;
    feed.follower.live(live.epoch, live.event);
    return true;
  }

  /** Users followed on this node (bounded by `maxSubscriptions`). */
  get subscriptionCount(): number {
    return this.feeds.size;
  }

  close(): void {
    this.closed = true;
    for (const feed of this.feeds.values()) feed.follower.close();
    this.feeds.clear();
  }

  private async readHead(userId: string): Promise<{ epoch: string; headSeq: number }> {
    const result = await this.read(userId, 'head');
    if (!Array.isArray(result) || !Buffer.isBuffer(result[0]) || typeof result[1] !== 'number') {
      throw new Error('RedisBroker: malformed head reply');
    }
    return { epoch: result[0].toString('latin1'), headSeq: result[1] };
  }

  private async read(
    userId: string,
    mode: 'head' | ReadCursor['kind'],
    cursor?: ReadCursor,
  ): Promise<unknown> {
    const now = this.options.clock();
    const position = cursor?.kind === 'position' ? cursor : undefined;
    try {
      return await this.reads.run(() =>
        this.links.userStep(userId, (command, guard) => {
          this.links.holdCommands(userId);
          // Bulk replies as Buffers: the frames are written as bytes (`decodeEvents`).
          return command.agentsocketReadBuffer(
            ...this.keys.user(userId),
            this.ids.epoch(),
            mode,
            position?.seq ?? 0,
            position?.epoch ?? '',
            this.options.historySize,
            this.options.metaTtlMs,
            now - this.options.historyTtlMs,
            ...guard,
          );
        }),
      );
    } catch (error) {
      throw toBrokerError(error);
    }
  }

  /** `deliver` for a live event, without a closure per event. */
  private deliverEvent(userId: string, epoch: string, event: StreamEvent): void {
    if (this.closed) return;
    try {
      this.handlers?.onEvent(userId, epoch, event);
    } catch (error) {
      this.options.logger?.error({ err: errorMessage(error) }, 'redis broker: a handler threw');
    }
  }

  /** Runs a handler; a throwing handler is logged, never breaks the engine. */
  private deliver(call: () => void): void {
    if (this.closed) return;
    try {
      call();
    } catch (error) {
      this.options.logger?.error({ err: errorMessage(error) }, 'redis broker: a handler threw');
    }
  }
}
