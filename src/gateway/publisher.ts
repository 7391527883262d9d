/**
 * Publishing (PROTOCOL.md sections 3 and 5): one event to a user (with
 * `wait`), a batch in input order, a broadcast. Validates at the edge, hands
 * the event to the broker, and answers with its seq and how many connections
 * got it.
 *
 * `delivered` without `wait` counts this node's writes made during the
 * broker's publish: the memory broker fans out synchronously inside it, so
 * the node's `onEvent` reports its writes here (`countWrites`) while the
 * probe is set. With `wait`, the waiter counts every node's reports.
 */
import { randomUUID } from 'node:crypto';
import type { Broker, PublishOutcome } from '../broker/broker.js';
import { GatewayError } from '../errors.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { EVENT_NAME_PATTERN } from '../protocol/agent-events.js';
import { validateEventInput, type EventInput, type ValidEvent } from '../protocol/event-input.js';
import type { JsonValue } from '../protocol/frames.js';
import { isValidUserId } from '../protocol/user-id.js';
import type { ClusterDirectory } from './cluster-directory.js';
import type { DeliveryWaiters, Waiter } from './delivery-waiters.js';
import type {
  BatchItem,
  BatchResult,
  BroadcastResult,
  GatewayStats,
  PublishResult,
  PublishWaitOptions,
} from './gateway-types.js';
import type { ResolvedOptions } from './options.js';

/** Longest `wait` of a publish (PROTOCOL.md section 5). */
export const MAX_WAIT_MS = 30_000;

/** What the publisher needs from its node. */
export interface PublisherContext {
  readonly broker: Broker;
  readonly options: ResolvedOptions;
  readonly metrics: GatewayMetrics;
  readonly nodeId: string;
  readonly waiters: DeliveryWaiters;
  readonly directory: ClusterDirectory;
  /** The node's counters, shown by `stats()`. */
  readonly counters: GatewayStats['events'];
  /** Resolves when the broker has started. */
  readonly ready: Promise<void>;
  isStarted(): boolean;
  /** Throws the 503 while the node drains. */
  assertAccepting(): void;
  assertBrokerStarted(): void;
  /** The `GatewayError` to answer a broker failure with (counted and logged). */
  brokerFailure(op: string, error: unknown): GatewayError;
  countError(kind: string): void;
  /** A publish or broadcast starts / ends: a drain waits until none are pending. */
  begin(): void;
  settle(): void;
}

export class Publisher {
  /** The `kind="new"` child of the published counter, resolved once (labels hash per call otherwise). */
  private readonly publishedNew: { inc(): void };
  /** The user whose event is being handed to the broker right now, and this node's writes of it. */
  private probeUser: string | null = null;
  private probeCount = 0;
  private broadcastProbe: { count: number } | null = null;

  constructor(private readonly ctx: PublisherContext) {
    this.publishedNew = ctx.metrics.eventsPublished.labels({ kind: 'new' });
  }

  /** The node wrote a live event of `userId` to `written` connections. */
  countWrites(userId: string, written: number): void {
    if (this.probeUser === userId) this.probeCount += written;
  }

  /** The node wrote a broadcast to `written` connections. */
  countBroadcastWrites(written: number): void {
    if (this.broadcastProbe) this.broadcastProbe.count += written;
  }

  publish(
    userId: string,
    input: EventInput,
    options: PublishWaitOptions = {},
  ): Promise<PublishResult> {
    // Not `async`: one promise per publish instead of two (this is the hot path).
    try {
      if (!isValidUserId(userId)) {
        throw new GatewayError('bad_request', 'userId is malformed', 'userId');
      }
      const waitMs = options.waitMs ?? 0;
      if (!Number.isSafeInteger(waitMs) || waitMs < 0 || waitMs > MAX_WAIT_MS) {
        throw new GatewayError(
          'bad_request',
          `wait must be an integer from 0 to ${MAX_WAIT_MS}`,
          'wait',
        );
      }
      return this.publishValid(userId, this.validate(input, ''), waitMs);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async publishBatch(items: readonly BatchItem[]): Promise<BatchResult[]> {
    const { limits } = this.ctx.options;
    if (!Array.isArray(items))
      throw new GatewayError('bad_request', 'events must be an array', 'events');
    if (items.length > limits.maxBatchEvents) {
      throw new GatewayError(
        'bad_request',
        `a batch holds at most ${limits.maxBatchEvents} events`,
        'events',
      );
    }
    // Validate everything first: a rejected batch publishes nothing.
    const valid = items.map((item, index) => {
      const field = `events[${index}]`;
      if (typeof item !== 'object' || item === null) {
        throw new GatewayError('bad_request', `${field} must be an object`, field);
      }
      const { userId, ...event } = item;
      if (!isValidUserId(userId)) {
        throw new GatewayError('bad_request', `${field}.userId is malformed`, `${field}.userId`);
      }
      return { userId, event: this.validate(event, `${field}.`) };
    });
    this.ctx.assertAccepting();
    const results: BatchResult[] = [];
    // One accepted batch is one pending publish: a drain waits for all of it.
    this.ctx.begin();
    try {
      // In input order, one at a time: per-user order is the input order.
      for (const { userId, event } of valid) {
        try {
          results.push(await this.publishValid(userId, event, 0, true));
        } catch (error) {
          const e =
            error instanceof GatewayError ? error : new GatewayError('internal', 'publish failed');
          results.push({ error: { code: e.code, message: e.message } });
        }
      }
    } finally {
      this.ctx.settle();
    }
    return results;
  }

  async broadcast(event: string, data: JsonValue = null): Promise<BroadcastResult> {
    if (typeof event !== 'string' || !EVENT_NAME_PATTERN.test(event)) {
      throw new GatewayError('bad_request', 'event must match ^[a-z][a-z0-9_.:-]{0,63}$', 'event');
    }
    const checked = this.validate({ event, data }, '');
    this.ctx.assertAccepting();
    this.ctx.begin();
    try {
      return await this.broadcastAccepted(event, checked.dataJson);
    } finally {
      this.ctx.settle();
    }
  }

  private async broadcastAccepted(event: string, dataJson: string): Promise<BroadcastResult> {
    await this.ctx.ready;
    this.ctx.assertBrokerStarted();
    const id = `bc_${randomUUID()}`;
    const frame = `{"type":"broadcast","id":"${id}","event":${JSON.stringify(event)},"ts":${Date.now()},"data":${dataJson}}`;
    const probe = { count: 0 };
    this.broadcastProbe = probe;
    let sent: Promise<void>;
    try {
      sent = this.ctx.broker.broadcast(frame);
    } finally {
      this.broadcastProbe = null;
    }
    try {
      await sent;
    } catch (error) {
      throw this.ctx.brokerFailure('broadcast', error);
    }
    this.ctx.counters.broadcasts++;
    this.ctx.metrics.broadcasts.inc();
    return { id, connections: await this.ctx.directory.broadcastReach(probe.count) };
  }

  private validate(input: unknown, prefix: string): ValidEvent {
    const { maxDataBytes, maxDataDepth } = this.ctx.options.limits;
    const checked = validateEventInput(input, maxDataBytes, maxDataDepth);
    if (!checked.ok) {
      const { field, message, tooLarge } = checked.failure;
      throw new GatewayError(
        tooLarge ? 'payload_too_large' : 'bad_request',
        `${prefix}${message}`,
        `${prefix}${field}`,
      );
    }
    return checked.value;
  }

  private async publishValid(
    userId: string,
    valid: ValidEvent,
    waitMs: number,
    /** Part of a batch accepted before a drain began: it finishes. */
    accepted = false,
  ): Promise<PublishResult> {
    const { ctx } = this;
    if (!accepted) ctx.assertAccepting();
    if (!ctx.isStarted()) await ctx.ready;
    ctx.assertBrokerStarted();
    ctx.begin();
    try {
      let event = valid;
      let waiter: Waiter | null = null;
      if (waitMs > 0) {
        // A waiter is keyed by the event id, so the id must exist before the
        // publish (`ev_` ids are refused from publishers: no collision).
        if (event.id === undefined) event = { ...valid, id: `ev_${randomUUID()}` };
        waiter = ctx.waiters.add(userId, event.id as string, event.critical, waitMs);
        if (!waiter) ctx.countError('wait_capacity');
      }
      this.probeUser = userId;
      this.probeCount = 0;
      let pending: Promise<PublishOutcome>;
      try {
        pending = ctx.broker.publish(userId, event, waiter ? { awaitedBy: ctx.nodeId } : {});
      } finally {
        this.probeUser = null;
      }
      const writtenDuringPublish = this.probeCount;
      let outcome: PublishOutcome;
      try {
        outcome = await pending;
      } catch (error) {
        waiter?.cancel();
        throw ctx.brokerFailure('publish', error);
      }
      const { seq, epoch, id } = outcome;
      if (outcome.duplicate) {
        waiter?.cancel();
        ctx.counters.duplicates++;
        ctx.metrics.eventsPublished.inc({ kind: 'duplicate' });
        return { seq, epoch, id, delivered: 0, duplicate: true };
      }
      ctx.counters.published++;
      this.publishedNew.inc();
      let delivered = writtenDuringPublish;
      if (waiter) {
        await waiter.settled;
        waiter.cancel();
        delivered = waiter.delivered;
      }
      return { seq, epoch, id, delivered, duplicate: false };
    } finally {
      ctx.settle();
    }
  }
}
