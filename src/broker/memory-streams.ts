/**
 * The user streams of the in-process engine, shared by every node of one
 * `InProcessCluster` (a lone `MemoryBroker` is a cluster of one). It meets
 * the stream contract (`stream-engine.ts`) for all its nodes at once.
 *
 * Atomicity: `publish` does all its work in one synchronous step (assign the
 * seq, append, trim, fan out to the subscribed nodes), and JS runs one step
 * at a time, so two publishes to a stream never interleave and every node
 * sees every stream in seq order.
 *
 * Bounds, each with its eviction rule:
 * - history per stream: `historySize` events and `maxStreamBytes` bytes of
 *   payloads, oldest dropped first; events are kept `historyTtlMs`, dropped
 *   lazily on publish and read, and by `sweep`;
 * - idempotency ids: only those of the stored events (an id leaves with its event);
 * - streams: `maxStreams`; past it the least recently used stream no node
 *   subscribes to is dropped (it comes back with a new epoch). Subscribed
 *   streams are never dropped: they are bounded by the gateways' connection
 *   limits, since a node subscribes only to users it holds connections of;
 * - bytes of all payloads: `maxTotalBytes`; past it, least recently used
 *   unsubscribed streams are dropped first, then the oldest events of the
 *   stream being published to (down to the new event itself, if it must).
 * Runs (grammar state and snapshots) live beside the streams in `MemoryRuns`,
 * with bounds of their own: they outlive the events and the streams.
 */
import { IdSource } from './id-source.js';
import { RunGrammarError } from '../errors.js';
import type { EncodedEvent } from '../protocol/event-frame.js';
import type { RunGrammarState } from '../runs/run-grammar.js';
import type { MemoryRuns } from './memory-runs.js';
import { MemoryStream } from './memory-stream.js';
import type { MemoryPresence } from './memory-presence.js';
import type {
  HistoryRead,
  PublishOutcome,
  ReadCursor,
  RunGrammarMode,
  StreamHandlers,
} from './stream-engine.js';

export interface MemoryStreamsOptions {
  historySize: number;
  historyTtlMs: number;
  maxStreams: number;
  maxStreamBytes: number;
  maxTotalBytes: number;
  now: () => number;
}

/** What `stats()` reports, for metrics. */
export interface MemoryStreamsStats {
  streams: number;
  events: number;
  bytes: number;
  evictedStreams: number;
}

export class MemoryStreams {
  private readonly streams = new Map<string, MemoryStream>();
  /** The streams no node subscribes to, least recently used first: the eviction order. */
  private readonly evictable = new Map<string, MemoryStream>();
  /** The nodes subscribed to each user (usually one), in subscription order. */
  private readonly subscribers = new Map<string, StreamHandlers[]>();
  private readonly ids = new IdSource();
  private totalBytes = 0;
  private totalEvents = 0;
  private evictedStreams = 0;

  constructor(
    private readonly options: MemoryStreamsOptions,
    /** Read in the publish step for `PublishOutcome.connections`. */
    private readonly presence: MemoryPresence,
    /** Checked and folded in the publish step (the run grammar, the snapshots). */
    private readonly runs: MemoryRuns,
  ) {}

  get now(): () => number {
    return this.options.now;
  }

  /**
   * Assigns the seq, stores, trims and fans out to the subscribed nodes, in
   * one step. A handler that throws rejects this publish after the event is
   * stored: a retry with the same id is then answered as a duplicate.
   */
  publish(
    userId: string,
    event: EncodedEvent,
    awaitedBy: string | undefined,
    runGrammar: RunGrammarMode = 'strict',
  ): PublishOutcome {
    const now = this.options.now();
    const stream = this.use(userId, now);
    this.expire(stream, now);
    if (event.id !== undefined) {
      const seq = stream.seqOfId(event.id);
      if (seq !== undefined) {
        return { seq, epoch: stream.epoch, id: event.id, duplicate: true, connections: 0 };
      }
    }
    // The grammar, before the seq is assigned: a refused event uses none.
    let nextRunState: RunGrammarState | undefined;
    let openToolCalls: string[] | undefined;
    let violation: PublishOutcome['runGrammarViolation'];
    if (event.run !== undefined) {
      const verdict = this.runs.check(userId, event.event, event.run, now);
      if (verdict.ok) {
        nextRunState = verdict.next;
        openToolCalls = verdict.openToolCalls;
      } else if (runGrammar === 'strict') {
        throw new RunGrammarError(verdict.code, verdict.message);
      } else if (runGrammar === 'warn') {
        violation = { code: verdict.code, message: verdict.message };
      }
    }
    const seq = stream.headSeq + 1;
    // Generated ids start with `ev_`, which validation refuses in a
    // publisher's id, so they never collide with one. A counter behind a
    // random per-process prefix: unique, and far cheaper than random bytes.
    const id = event.id ?? this.ids.eventId();
    // Framed once, here: every node writes these bytes, live and on replay.
    const stored = stream.append(seq, id, now, event, awaitedBy);
    const bytes = stored.payloadBytes;
    this.totalBytes += bytes;
    this.totalEvents++;
    while (stream.length > this.options.historySize || stream.bytes > this.options.maxStreamBytes) {
      this.dropOldest(stream);
    }
    this.enforceTotalBytes(userId, stream);
    if (event.run !== undefined) {
      this.runs.record(
        userId,
        { seq, epoch: stream.epoch, ts: now, event: event.event, run: event.run },
        nextRunState,
      );
    }
    // The stream's own reference to its subscribers: no lookup by user id.
    const nodes = stream.nodes;
    if (nodes !== null) {
      for (let i = 0; i < nodes.length; i++) nodes[i]!.onEvent(userId, stream.epoch, stored);
    }
    const connections = this.presence.countOf(userId, now);
    const outcome: PublishOutcome = { seq, epoch: stream.epoch, id, duplicate: false, connections };
    if (openToolCalls !== undefined) outcome.openToolCalls = openToolCalls;
    if (violation !== undefined) outcome.runGrammarViolation = violation;
    return outcome;
  }

  read(userId: string, cursor: ReadCursor): HistoryRead {
    const now = this.options.now();
    const stream = this.use(userId, now);
    this.expire(stream, now);
    const { epoch, headSeq, ackedSeq } = stream;
    const first = stream.firstSeq;
    const after = cursor.kind === 'acked' ? ackedSeq : cursor.seq;
    // A cursor of another epoch, or ahead of the head, says nothing about this
    // stream: replay all it holds and report the gap.
    const foreign = cursor.kind === 'position' && (cursor.epoch !== epoch || cursor.seq > headSeq);
    if (foreign || after + 1 < first) {
      return { epoch, headSeq, ackedSeq, events: stream.after(0), from: first, gap: true };
    }
    return { epoch, headSeq, ackedSeq, events: stream.after(after), from: after + 1, gap: false };
  }

  /**
   * Moves the acked cursor to `seq`, clamped to the head: an ack can only be
   * about a published event (a late ack from before an eviction must not
   * run ahead of the new stream). A user without a stream has nothing to ack.
   */
  ack(userId: string, seq: number, epoch: string | undefined): void {
    const stream = this.streams.get(userId);
    if (!stream || (epoch !== undefined && epoch !== stream.epoch)) return;
    this.touch(userId, stream, this.options.now());
    const target = Math.min(seq, stream.headSeq);
    if (target > stream.ackedSeq) stream.ackedSeq = target;
  }

  /** `node` receives the user's live events from now on (once, however often it subscribes). */
  subscribe(userId: string, node: StreamHandlers): void {
    let nodes = this.subscribers.get(userId);
    if (nodes === undefined) this.subscribers.set(userId, (nodes = [node]));
    else if (!nodes.includes(node)) nodes.push(node);
    this.evictable.delete(userId);
    const stream = this.streams.get(userId);
    if (stream !== undefined) stream.nodes = nodes;
  }

  unsubscribe(userId: string, node: StreamHandlers): void {
    const nodes = this.subscribers.get(userId);
    const index = nodes?.indexOf(node) ?? -1;
    if (nodes === undefined || index < 0) return;
    nodes.splice(index, 1);
    if (nodes.length > 0) return;
    this.subscribers.delete(userId);
    const stream = this.streams.get(userId);
    if (stream) {
      stream.nodes = null;
      this.evictable.set(userId, stream);
    }
  }

  /**
   * Drops the events older than `historyTtlMs` at `now`, and the streams that
   * are then empty, unsubscribed and unused for `historyTtlMs` (they come back
   * with a new epoch). Returns the number of events plus streams dropped.
   * One pass over every stream: call it every minute or so, not per publish.
   */
  sweep(now: number): number {
    let dropped = 0;
    for (const [userId, stream] of this.streams) {
      dropped += this.expire(stream, now);
      if (
        stream.length === 0 &&
        !this.subscribers.has(userId) &&
        now - stream.usedAt >= this.options.historyTtlMs
      ) {
        this.evict(userId, stream);
        dropped++;
      }
    }
    return dropped;
  }

  stats(): MemoryStreamsStats {
    return {
      streams: this.streams.size,
      events: this.totalEvents,
      bytes: this.totalBytes,
      evictedStreams: this.evictedStreams,
    };
  }

  clear(): void {
    this.streams.clear();
    this.evictable.clear();
    this.subscribers.clear();
    this.totalBytes = 0;
    this.totalEvents = 0;
  }

  /** The user's stream, created on first use, marked as used now. */
  private use(userId: string, now: number): MemoryStream {
    const existing = this.streams.get(userId);
    if (existing) {
      this.touch(userId, existing, now);
      return existing;
    }
    while (this.streams.size >= this.options.maxStreams) {
      const victim = this.leastRecentlyUsed(userId);
      if (!victim) break;
      this.evict(victim[0], victim[1]);
    }
    // Epochs only need to differ from every earlier epoch of any stream: a
    // random per-process prefix and a counter do that without a syscall per
    // new user (random bytes were a tenth of a first handshake's cost).
    const stream = new MemoryStream(this.ids.epoch(), now);
    this.streams.set(userId, stream);
    stream.nodes = this.subscribers.get(userId) ?? null;
    if (stream.nodes === null) this.evictable.set(userId, stream);
    return stream;
  }

  private touch(userId: string, stream: MemoryStream, now: number): void {
    stream.usedAt = now;
    // A subscribed stream is not in the eviction order: no lookup to find that out.
    if (stream.nodes === null && this.evictable.delete(userId)) this.evictable.set(userId, stream);
  }

  /** The least recently used unsubscribed stream other than `except`'s. */
  private leastRecentlyUsed(except: string): [string, MemoryStream] | undefined {
    for (const entry of this.evictable) if (entry[0] !== except) return entry;
    return undefined;
  }

  private evict(userId: string, stream: MemoryStream): void {
    this.streams.delete(userId);
    this.evictable.delete(userId);
    this.totalBytes -= stream.bytes;
    this.totalEvents -= stream.length;
    this.evictedStreams++;
  }

  private dropOldest(stream: MemoryStream): void {
    this.totalBytes -= stream.dropOldest();
    this.totalEvents--;
  }

  /** Drops the events that reached `historyTtlMs` at `now`; returns how many. */
  private expire(stream: MemoryStream, now: number): number {
    const cutoff = now - this.options.historyTtlMs;
    let dropped = 0;
    for (let ts = stream.oldestTs; ts !== undefined && ts <= cutoff; ts = stream.oldestTs) {
      this.dropOldest(stream);
      dropped++;
    }
    return dropped;
  }

  /**
   * Brings the total back under `maxTotalBytes` after an append to `current`.
   * The total was under it before the append, so dropping at most everything
   * `current` holds always suffices: the other subscribed streams are never
   * touched.
   */
  private enforceTotalBytes(userId: string, current: MemoryStream): void {
    while (this.totalBytes > this.options.maxTotalBytes) {
      const victim = this.leastRecentlyUsed(userId);
      if (victim) this.evict(victim[0], victim[1]);
      else if (current.length > 0) this.dropOldest(current);
      else break;
    }
  }
}
