/**
 * The in-process Broker (the default engine): every user stream lives in this
 * process's memory. It meets the contract in `broker.ts` as one node.
 *
 * Atomicity: `publish` does all its work in one synchronous step (assign the
 * seq, append, trim, fan out), and JS runs one step at a time, so two publishes
 * to a stream never interleave and `onEvent` sees every stream in seq order.
 *
 * Bounds, each with its eviction rule:
 * - history per stream: `historySize` events and `maxStreamBytes` bytes of
 *   frames, oldest dropped first; events are kept `historyTtlMs`, dropped
 *   lazily on publish and read, and by `sweep`;
 * - idempotency ids: only those of the stored events (an id leaves with its event);
 * - streams: `maxStreams`; past it the least recently used stream without a
 *   subscription is dropped (it comes back with a new epoch). Subscribed
 *   streams are never dropped: they are bounded by the gateway's connection
 *   limits, since a node subscribes only to users it holds connections of;
 * - bytes of all frames: `maxTotalBytes`; past it, least recently used
 *   unsubscribed streams are dropped first, then the oldest events of the
 *   stream being published to (down to the new event itself, if it must).
 */
import { randomBytes } from 'node:crypto';
import type { ValidEvent } from '../protocol/event-input.js';
import {
  BrokerUnavailableError,
  encodeEventFrame,
  type Broker,
  type BrokerHandlers,
  type BrokerHealth,
  type ControlMessage,
  type DeliveryReport,
  type HistoryRead,
  type PublishOptions,
  type PublishOutcome,
  type ReadCursor,
  type StreamEvent,
} from './broker.js';
import { MemoryStream } from './memory-stream.js';

export interface MemoryBrokerOptions {
  /** Events kept per user stream. Default 1000. */
  historySize?: number;
  /** Lifetime of a stored event, in ms. Default 3 600 000 (1 h). */
  historyTtlMs?: number;
  /** User streams kept; past it the least recently used unsubscribed one is dropped. Default 100 000. */
  maxStreams?: number;
  /** Bytes of frames kept per stream (UTF-8); oldest events dropped past it. Default 8 MiB. */
  maxStreamBytes?: number;
  /** Bytes of frames kept by the whole broker. Default 512 MiB. */
  maxTotalBytes?: number;
  /** The clock, in ms since the epoch: event timestamps and expiry. Default `Date.now`. */
  now?: () => number;
  /** This node's id in delivery reports. Default: `n_` and 8 random characters. */
  nodeId?: string;
}

/** What `stats()` reports, for metrics. */
export interface MemoryBrokerStats {
  /** User streams held. */
  streams: number;
  /** Users this node is subscribed to. */
  subscribedUsers: number;
  /** Events stored in all histories. */
  events: number;
  /** Bytes of the stored frames (UTF-8). */
  bytes: number;
  /** Streams dropped by the `maxStreams` and `maxTotalBytes` bounds and by `sweep`, since start. */
  evictedStreams: number;
}

const MiB = 1024 * 1024;

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new TypeError(`option ${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

function randomToken(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

/**
 * @example
 * const broker = new MemoryBroker({ historySize: 500 });
 * await broker.start(handlers);
 * const { seq, epoch } = await broker.publish('alice', validEvent);
 */
export class MemoryBroker implements Broker {
  readonly nodeId: string;
  private readonly historySize: number;
  private readonly historyTtlMs: number;
  private readonly maxStreams: number;
  private readonly maxStreamBytes: number;
  private readonly maxTotalBytes: number;
  private readonly now: () => number;

  private readonly streams = new Map<string, MemoryStream>();
  /** The streams without a subscription, least recently used first: the eviction order. */
  private readonly evictable = new Map<string, MemoryStream>();
  private readonly subscribed = new Set<string>();
  private handlers: BrokerHandlers | undefined;
  private closed = false;
  private readonly idPrefix = `${randomToken(6)}_`;
  private idCounter = 0;
  private epochCounter = 0;
  private totalBytes = 0;
  private totalEvents = 0;
  private evictedStreams = 0;

  constructor(options: MemoryBrokerOptions = {}) {
    this.historySize = positiveInteger('historySize', options.historySize ?? 1000);
    this.historyTtlMs = positiveInteger('historyTtlMs', options.historyTtlMs ?? 3_600_000);
    this.maxStreams = positiveInteger('maxStreams', options.maxStreams ?? 100_000);
    this.maxStreamBytes = positiveInteger('maxStreamBytes', options.maxStreamBytes ?? 8 * MiB);
    this.maxTotalBytes = positiveInteger('maxTotalBytes', options.maxTotalBytes ?? 512 * MiB);
    if (options.now !== undefined && typeof options.now !== 'function') {
      throw new TypeError('option now must be a function returning ms since the epoch');
    }
    this.now = options.now ?? Date.now;
    if (
      options.nodeId !== undefined &&
      (typeof options.nodeId !== 'string' || options.nodeId.length === 0)
    ) {
      throw new TypeError('option nodeId must be a non-empty string');
    }
    this.nodeId = options.nodeId ?? `n_${randomToken(6)}`;
  }

  async start(handlers: BrokerHandlers): Promise<void> {
    this.assertOpen();
    if (this.handlers) throw new Error('MemoryBroker.start: already started');
    this.handlers = handlers;
  }

  async publish(
    userId: string,
    event: ValidEvent,
    options: PublishOptions = {},
  ): Promise<PublishOutcome> {
    this.assertOpen();
    const now = this.now();
    const stream = this.use(userId, now);
    this.expire(stream, now);
    if (event.id !== undefined) {
      const seq = stream.seqOfId(event.id);
      if (seq !== undefined) return { seq, epoch: stream.epoch, id: event.id, duplicate: true };
    }
    const seq = stream.headSeq + 1;
    // Generated ids start with `ev_`, which validation refuses in a
    // publisher's id, so they never collide with one. A counter behind a
    // random per-process prefix: unique, and far cheaper than random bytes.
    const id = event.id ?? `ev_${this.idPrefix}${(++this.idCounter).toString(36)}`;
    const frame = encodeEventFrame(seq, id, now, event);
    const stored: StreamEvent =
      options.awaitedBy === undefined
        ? { seq, id, event: event.event, critical: event.critical, ts: now, frame }
        : {
            seq,
            id,
            event: event.event,
            critical: event.critical,
            ts: now,
            frame,
            awaitedBy: options.awaitedBy,
          };
    const bytes = Buffer.byteLength(frame, 'utf8');
    stream.append(stored, bytes, event.id !== undefined);
    this.totalBytes += bytes;
    this.totalEvents++;
    while (stream.length > this.historySize || stream.bytes > this.maxStreamBytes) {
      this.dropOldest(stream);
    }
    this.enforceTotalBytes(userId, stream);
    // Fan-out is part of the same step, so live order is seq order. A handler
    // that throws rejects this publish after the event is stored: a retry with
    // the same id is then answered as a duplicate.
    if (this.subscribed.has(userId)) this.handlers?.onEvent(userId, stream.epoch, stored);
    return { seq, epoch: stream.epoch, id, duplicate: false };
  }

  async broadcast(frame: string): Promise<void> {
    this.assertOpen();
    this.handlers?.onBroadcast(frame);
  }

  async subscribe(userId: string): Promise<void> {
    this.assertOpen();
    this.subscribed.add(userId);
    this.evictable.delete(userId);
  }

  async unsubscribe(userId: string): Promise<void> {
    this.assertOpen();
    if (!this.subscribed.delete(userId)) return;
    const stream = this.streams.get(userId);
    if (stream) this.evictable.set(userId, stream);
  }

  async readHistory(userId: string, cursor: ReadCursor): Promise<HistoryRead> {
    this.assertOpen();
    const now = this.now();
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
  async ack(userId: string, seq: number, epoch?: string): Promise<void> {
    this.assertOpen();
    const stream = this.streams.get(userId);
    if (!stream || (epoch !== undefined && epoch !== stream.epoch)) return;
    this.touch(userId, stream, this.now());
    const target = Math.min(seq, stream.headSeq);
    if (target > stream.ackedSeq) stream.ackedSeq = target;
  }

  /** One node: the command goes to this node's handler. No connection directory (one node). */
  async control(message: ControlMessage): Promise<void> {
    this.assertOpen();
    this.handlers?.onControl?.(message);
  }

  async reportDelivery(report: DeliveryReport): Promise<void> {
    this.assertOpen();
    if (report.awaitedBy === this.nodeId) this.handlers?.onDelivery(report);
  }

  /**
   * Drops the events older than `historyTtlMs` at `now`, and the streams that
   * are then empty, unsubscribed and unused for `historyTtlMs` (they come back
   * with a new epoch). Resolves to the number of events plus streams dropped.
   * One pass over every stream: call it every minute or so, not per publish.
   */
  async sweep(now: number): Promise<number> {
    this.assertOpen();
    let dropped = 0;
    for (const [userId, stream] of this.streams) {
      dropped += this.expire(stream, now);
      if (
        stream.length === 0 &&
        !this.subscribed.has(userId) &&
        now - stream.usedAt >= this.historyTtlMs
      ) {
        this.evict(userId, stream);
        dropped++;
      }
    }
    return dropped;
  }

  stats(): MemoryBrokerStats {
    return {
      streams: this.streams.size,
      subscribedUsers: this.subscribed.size,
      events: this.totalEvents,
      bytes: this.totalBytes,
      evictedStreams: this.evictedStreams,
    };
  }

  health(): BrokerHealth {
    return this.closed ? { healthy: false, reason: 'broker closed' } : { healthy: true };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.handlers = undefined;
    this.streams.clear();
    this.evictable.clear();
    this.subscribed.clear();
    this.totalBytes = 0;
    this.totalEvents = 0;
  }

  private assertOpen(): void {
    if (this.closed) throw new BrokerUnavailableError('broker closed');
  }

  /** The user's stream, created on first use, marked as used now. */
  private use(userId: string, now: number): MemoryStream {
    const existing = this.streams.get(userId);
    if (existing) {
      this.touch(userId, existing, now);
      return existing;
    }
    while (this.streams.size >= this.maxStreams) {
      const victim = this.leastRecentlyUsed(userId);
      if (!victim) break;
      this.evict(victim[0], victim[1]);
    }
    // Epochs only need to differ from every earlier epoch of any stream: a
    // random per-process prefix and a counter do that without a syscall per
    // new user (random bytes were a tenth of a first handshake's cost).
    const stream = new MemoryStream(`e_${this.idPrefix}${(++this.epochCounter).toString(36)}`, now);
    this.streams.set(userId, stream);
    if (!this.subscribed.has(userId)) this.evictable.set(userId, stream);
    return stream;
  }

  private touch(userId: string, stream: MemoryStream, now: number): void {
    stream.usedAt = now;
    if (this.evictable.delete(userId)) this.evictable.set(userId, stream);
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
    const cutoff = now - this.historyTtlMs;
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
    while (this.totalBytes > this.maxTotalBytes) {
      const victim = this.leastRecentlyUsed(userId);
      if (victim) this.evict(victim[0], victim[1]);
      else if (current.length > 0) this.dropOldest(current);
      else break;
    }
  }
}
