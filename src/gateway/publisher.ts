/**
 * Publishing (PROTOCOL.md sections 3 and 5): one event to a user (with
 * `wait`), a batch in input order, a broadcast. Validates at the edge,
 * encodes the event once (`protocol/event-frame.ts`), hands it to the stream
 * engine, and answers with its seq and how many connections got it.
 *
 * `delivered` without `wait` is the engine's count of the user's open
 * connections on every node, read in the publish step
 * (`PublishOutcome.connections`): the same meaning on every engine. With
 * `wait`, the waiter counts every node's delivery reports.
 */
import { randomUUID } from 'node:crypto';
import type { ClusterBus } from '../broker/cluster-bus.js';
import type { PublishOptions, PublishOutcome, StreamEngine } from '../broker/stream-engine.js';
import { GatewayError, RETRY_AFTER_SECONDS, RunGrammarError } from '../errors.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { EVENT_NAME_PATTERN } from '../protocol/agent-events.js';
import { encodeEvent } from '../protocol/event-frame.js';
import { validateEventInput, type EventInput, type ValidEvent } from '../protocol/event-input.js';
import type { JsonValue } from '../protocol/frames.js';
import { isValidUserId } from '../protocol/user-id.js';
import type { BrokerFailures } from './broker-failures.js';
import type { ClusterDirectory } from './cluster-directory.js';
import type { DeliveryWaiters, WaitRefusal, Waiter } from './delivery-waiters.js';
import type {
  BatchItem,
  BatchResult,
  BroadcastResult,
  PublishResult,
  PublishWaitOptions,
} from './gateway-types.js';
import type { NodeLifecycle } from './node-lifecycle.js';
import type { NodeStats } from './node-stats.js';
import type { ResolvedOptions } from './options.js';
import { PublishAnswer } from './publish-answer.js';

/** Longest `wait` of a publish (PROTOCOL.md section 5). */
export const MAX_WAIT_MS = 30_000;

/** The node's parts a publisher works with. */
export interface PublisherParts {
  readonly streams: StreamEngine;
  readonly bus: ClusterBus;
  readonly options: ResolvedOptions;
  readonly metrics: GatewayMetrics;
  readonly nodeId: string;
  readonly waiters: DeliveryWaiters;
  readonly directory: ClusterDirectory;
  readonly stats: NodeStats;
  /** Drain, start failure, and the publishes in flight. */
  readonly lifecycle: NodeLifecycle;
  readonly failures: BrokerFailures;
  /** Resolves when the broker has started. */
  readonly ready: Promise<void>;
}

export class Publisher {
  /** The engine's options of a publish nobody waits for: made once. */
  private readonly publishOptions: PublishOptions;

  constructor(private readonly parts: PublisherParts) {
    this.publishOptions = { runGrammar: parts.options.runGrammar };
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
    const { limits } = this.parts.options;
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
    const { lifecycle } = this.parts;
    lifecycle.assertAccepting();
    const results: BatchResult[] = [];
    // One accepted batch is one pending publish: a drain waits for all of it.
    lifecycle.begin();
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
      lifecycle.settle();
    }
    return results;
  }

  async broadcast(event: string, data: JsonValue = null): Promise<BroadcastResult> {
    if (typeof event !== 'string' || !EVENT_NAME_PATTERN.test(event)) {
      throw new GatewayError('bad_request', 'event must match ^[a-z][a-z0-9_.:-]{0,63}$', 'event');
    }
    const checked = this.validate({ event, data }, '');
    const { lifecycle } = this.parts;
    lifecycle.assertAccepting();
    lifecycle.begin();
    try {
      return await this.broadcastAccepted(event, checked.dataJson);
    } finally {
      lifecycle.settle();
    }
  }

  private async broadcastAccepted(event: string, dataJson: string): Promise<BroadcastResult> {
    const { parts } = this;
    await parts.ready;
    parts.lifecycle.assertStarted();
    const id = `bc_${randomUUID()}`;
    const frame = `{"type":"broadcast","id":"${id}","event":${JSON.stringify(event)},"ts":${Date.now()},"data":${dataJson}}`;
    try {
      await parts.bus.broadcast(frame);
    } catch (error) {
      throw parts.failures.map('broadcast', error);
    }
    parts.stats.events.broadcasts++;
    parts.metrics.broadcasts.inc();
    return { id, connections: await parts.directory.broadcastReach() };
  }

  private validate(input: unknown, prefix: string): ValidEvent {
    const { maxDataBytes, maxDataDepth } = this.parts.options.limits;
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

  private tooManyWaits(refusal: WaitRefusal): GatewayError {
    const { parts } = this;
    parts.stats.countError('wait_capacity');
    parts.metrics.waitRefusals.inc({ limit: refusal });
    const { maxPendingWaits, maxPendingWaitsPerUser } = parts.options.limits;
    const message =
      refusal === 'user'
        ? `this user has ${maxPendingWaitsPerUser} publishes waiting for delivery (limits.maxPendingWaitsPerUser); publish without wait or retry later`
        : `this node has ${maxPendingWaits} publishes waiting for delivery (limits.maxPendingWaits); publish without wait or retry later`;
    return new GatewayError('too_many_waits', message, 'wait', RETRY_AFTER_SECONDS);
  }

  private publishValid(
    userId: string,
    valid: ValidEvent,
    waitMs: number,
    /** Part of a batch accepted before a drain began: it finishes. */
    accepted = false,
  ): Promise<PublishResult> {
    const { parts } = this;
    const { lifecycle } = parts;
    if (waitMs > 0 || !lifecycle.isStarted)
      return this.publishWaiting(userId, valid, waitMs, accepted);
    // The common case, without an async frame: one promise on top of the engine's.
    if (!accepted) lifecycle.assertAccepting();
    lifecycle.assertStarted();
    lifecycle.begin();
    const { streams } = parts;
    if (streams.publishNow !== undefined) {
      // The memory engine: the step in this turn, one promise in all.
      let outcome: PublishOutcome;
      try {
        outcome = streams.publishNow(userId, encodeEvent(valid), this.publishOptions);
      } catch (error) {
        lifecycle.settle();
        return Promise.reject(this.refused(error, null));
      }
      lifecycle.settle();
      return Promise.resolve(
        this.answer(outcome, null) ?? this.result(outcome, outcome.connections),
      );
    }
    let pending: Promise<PublishOutcome>;
    try {
      pending = streams.publish(userId, encodeEvent(valid), this.publishOptions);
    } catch (error) {
      lifecycle.settle();
      return Promise.reject(this.refused(error, null));
    }
    return pending.then(
      (outcome) => {
        lifecycle.settle();
        return this.answer(outcome, null) ?? this.result(outcome, outcome.connections);
      },
      (error: unknown) => {
        lifecycle.settle();
        throw this.refused(error, null);
      },
    );
  }

  /** A publish that waits for delivery, or for the broker to start. */
  private async publishWaiting(
    userId: string,
    valid: ValidEvent,
    waitMs: number,
    accepted: boolean,
  ): Promise<PublishResult> {
    const { parts } = this;
    const { lifecycle } = parts;
    if (!accepted) lifecycle.assertAccepting();
    if (!lifecycle.isStarted) await parts.ready;
    lifecycle.assertStarted();
    lifecycle.begin();
    try {
      let event = valid;
      let waiter: Waiter | null = null;
      if (waitMs > 0) {
        // A waiter is keyed by the event id, so the id must exist before the
        // publish (`ev_` ids are refused from publishers: no collision).
        if (event.id === undefined) event = { ...valid, id: `ev_${randomUUID()}` };
        const added = parts.waiters.add(userId, event.id as string, event.critical, waitMs);
        // Refused before anything is stored: a retry is a first publish, not a duplicate.
        if (typeof added === 'string') throw this.tooManyWaits(added);
        waiter = added;
        parts.metrics.pendingWaits.set(parts.waiters.size);
      }
      let outcome: PublishOutcome;
      try {
        const { runGrammar } = parts.options;
        outcome = await parts.streams.publish(
          userId,
          encodeEvent(event),
          waiter ? { awaitedBy: parts.nodeId, runGrammar } : this.publishOptions,
        );
      } catch (error) {
        throw this.refused(error, waiter);
      }
      const duplicate = this.answer(outcome, waiter);
      if (duplicate !== null) return duplicate;
      let delivered = outcome.connections;
      if (waiter) {
        await waiter.settled;
        waiter.cancel();
        delivered = waiter.delivered;
      }
      return this.result(outcome, delivered);
    } finally {
      if (waitMs > 0) parts.metrics.pendingWaits.set(parts.waiters.size);
      lifecycle.settle();
    }
  }

  /** The engine refused the publish: the error to answer with. */
  private refused(error: unknown, waiter: Waiter | null): unknown {
    waiter?.cancel();
    // A refused event of a run: 409 with the rule's code (a GatewayError).
    if (error instanceof RunGrammarError)
      this.parts.metrics.runGrammarViolations.inc({ rule: error.code });
    return this.parts.failures.map('publish', error);
  }

  /** Counts a stored publish; the answer to a duplicate, or null for a new event. */
  private answer(outcome: PublishOutcome, waiter: Waiter | null): PublishResult | null {
    const { parts } = this;
    if (outcome.runGrammarViolation !== undefined) {
      parts.metrics.runGrammarViolations.inc({ rule: outcome.runGrammarViolation.code });
    }
    if (outcome.duplicate) {
      waiter?.cancel();
      parts.stats.events.duplicates++;
      parts.metrics.eventsPublished.inc({ kind: 'duplicate' });
      return new PublishAnswer(outcome.seq, outcome.epoch, outcome.id, 0, true);
    }
    parts.stats.events.published++;
    parts.metrics.countPublishedNew();
    return null;
  }

  /** A constructor, not a literal: `publish-answer.ts` says why. */
  private result(outcome: PublishOutcome, delivered: number): PublishResult {
    const result = new PublishAnswer(outcome.seq, outcome.epoch, outcome.id, delivered, false);
    if (outcome.openToolCalls !== undefined) result.openToolCalls = outcome.openToolCalls;
    return result;
  }
}
