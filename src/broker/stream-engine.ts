/**
 * The stream engine seam: every user's stream (sequence numbers, epoch,
 * history, acked cursor, idempotency ids) and the per-node subscriptions that
 * carry its live events. One of the three parts of a `Broker` (with
 * `cluster-bus.ts` and `presence-store.ts`).
 *
 * Contract (each point is pinned by test/contract/broker-contract.ts):
 * 1. `publish` is one atomic step per user stream: assign the next seq
 *    (1, 2, 3, … per epoch, no gap, no reuse), append to history (trimmed to
 *    `historySize`, expired after `historyTtlMs`), and fan out to every node
 *    subscribed to the user. Two publishes to one user never interleave. In
 *    the same step it reads how many open connections the presence store
 *    holds for the user, cluster-wide (`PublishOutcome.connections`).
 * 2. For a subscribed user, `onEvent` receives that user's events in seq
 *    order, each once, with no gap, unless `onResync` is raised for the user
 *    (the engine could not prove continuity: link loss, data loss); the
 *    gateway then re-reads history for that user's connections. Every event
 *    published after `subscribe` resolved reaches `onEvent`; events published
 *    while it was in flight may too (the Redis follower is positioned by the
 *    first live message), and the gateway drops those its read covered.
 * 3. `readHistory` is a consistent snapshot: `events` are exactly the stored
 *    events after the cursor, in order, and `headSeq` is the last seq at the
 *    moment of the read.
 * 4. A publish with an `id` already in the user's history window returns the
 *    first publish's seq with `duplicate: true` and fans out nothing.
 * 5. `ack` is cumulative and monotonic: the acked cursor only moves forward,
 *    and it is shared by every node.
 * 6. When the engine cannot do a step (unreachable), the promise rejects with
 *    `BrokerUnavailableError`: a publish gets a seq or an error, never a
 *    silent loss.
 * 7. An event of a run (`EncodedEvent.run`) is checked against the run
 *    grammar (`runs/run-grammar.ts`) in the same atomic step, after the
 *    idempotency check (a repeat is never a violation) and before the seq is
 *    assigned. A violation in `strict` mode rejects with `RunGrammarError`
 *    and stores, delivers and consumes nothing; in `warn`/`off` the event is
 *    published and the grammar state is left as it was. Every accepted event
 *    of a run is folded into the run's snapshot (`run-store.ts`).
 *
 * Events are opaque to the engine: it stores and carries `payload` (built by
 * `protocol/event-frame.ts`) and never builds a frame.
 */
import type { EncodedEvent, StreamPosition } from '../protocol/event-frame.js';
import type { RunGrammarCode } from '../runs/run-grammar.js';

/**
 * How a publish treats the run grammar: `strict` refuses a violation,
 * `warn` publishes it and reports it (`PublishOutcome.runGrammarViolation`),
 * `off` publishes it without a report.
 */
export type RunGrammarMode = 'strict' | 'warn' | 'off';
export const RUN_GRAMMAR_MODES: readonly RunGrammarMode[] = ['strict', 'warn', 'off'];

/** One stored event of a user stream. */
export interface StreamEvent {
  readonly seq: number;
  readonly id: string;
  readonly event: string;
  readonly critical: boolean;
  readonly ts: number;
  /** The publisher's encoding of the event (`EncodedEvent.payload`), carried unchanged. */
  readonly payload: string;
  /** Set when a publisher waits for delivery: nodes report deliveries of it. */
  readonly awaitedBy?: string | undefined;
  /**
   * The event's complete WebSocket frame (`gateway/wire-frame.ts`), when the
   * engine keeps events as frames (the memory engine, `StoredEvent`): nodes
   * write it as is instead of framing the event again.
   */
  readonly wire?: Buffer;
}

export interface PublishOptions {
  /**
   * The node id of a publisher that waits for delivery (`?wait=`). Nodes that
   * write the event, or see it acked, report it through `reportDelivery`.
   */
  awaitedBy?: string;
  /** How the run grammar is applied to an event of a run. Default `strict`. */
  runGrammar?: RunGrammarMode;
}

/** Where the event landed (`seq` of stream `epoch`), and what the step saw. */
export interface PublishOutcome extends StreamPosition {
  id: string;
  /** True when `id` repeated an earlier publish: nothing was sent again. */
  duplicate: boolean;
  /**
   * The user's open connections, on every node, that the event was handed to
   * (the presence store's count read in the publish step); 0 for a duplicate.
   */
  connections: number;
  /** An accepted `failed`/`cancelled` `agent_completed` left these tool calls open. */
  openToolCalls?: string[];
  /** `warn` mode: the rule the event broke, published anyway. */
  runGrammarViolation?: { code: RunGrammarCode; message: string };
}

/** Where a reading connection starts. */
export type ReadCursor =
  /** Resume: events after `seq` of stream `epoch`. */
  | ({ kind: 'position' } & StreamPosition)
  /** No cursor: events after the user's acked cursor (the recovery queue). */
  | { kind: 'acked' };

export interface HistoryRead {
  epoch: string;
  /** Last seq of the stream at the moment of the read (0 when empty). */
  headSeq: number;
  /** The user's acked cursor at the moment of the read. */
  ackedSeq: number;
  /** Stored events after the cursor, in seq order. */
  events: StreamEvent[];
  /**
   * The first seq the read covers: the cursor + 1, or the first stored seq
   * when `gap`. A cursor of the epoch a Redis restart that may have lost
   * writes left (docs/redis.md) resumes with `gap` after what it holds of the
   * retained events: `min(cursor, head when the epoch moved) + 1`.
   */
  from: number;
  /**
   * True when events after the cursor are missing: trimmed or expired, or the
   * cursor belongs to another epoch, or lies ahead of the head.
   */
  gap: boolean;
}

/** Where a stream engine hands the live events of the users this node subscribed to. */
export interface StreamHandlers {
  /** A live event of a user this node is subscribed to. */
  onEvent(userId: string, epoch: string, event: StreamEvent): void;
  /** Continuity of `userId`'s live events could not be proven: re-read history. */
  onResync(userId: string): void;
}

export interface StreamEngine {
  publish(userId: string, event: EncodedEvent, options?: PublishOptions): Promise<PublishOutcome>;
  /**
   * `publish` done in the caller's turn, for an engine that needs no I/O (the
   * memory engine): the same step and outcome, with an error thrown instead
   * of a rejected promise. The publisher uses it when present (no promise
   * per publish), so an engine that has it must keep both in step.
   */
  publishNow?(userId: string, event: EncodedEvent, options?: PublishOptions): PublishOutcome;
  readHistory(userId: string, cursor: ReadCursor): Promise<HistoryRead>;
  /**
   * Moves the user's acked cursor to `seq` if it is ahead. With `epoch`, the
   * ack counts only in that epoch: a late ack from a connection of an older
   * stream must not move the new stream's cursor past events nobody saw.
   */
  ack(userId: string, seq: number, epoch?: string): Promise<void>;
  /** This node holds a connection of `userId`: start receiving its live events. */
  subscribe(userId: string): Promise<void>;
  /** This node's last connection of `userId` is gone. */
  unsubscribe(userId: string): Promise<void>;
  /**
   * Housekeeping: drops what expired by `now` that the engine does not expire
   * by itself. Resolves to how many events and streams it dropped (memory:
   * expired events and idle streams; Redis, whose keys expire by themselves: 0).
   */
  sweep(now: number): Promise<number>;
}
