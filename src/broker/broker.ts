/**
 * The Broker seam: the engine that owns every user's stream (sequence numbers,
 * epoch, history, acked cursor, idempotency ids) and carries events between
 * nodes. The gateway owns sockets; the broker never touches them and hands
 * everything it delivers to one set of handlers.
 *
 * Implementations: `memory-broker.ts` (one process, the default) and
 * `redis-broker.ts` (any number of nodes). `test/contract/broker-contract.ts`
 * is the one suite both must pass.
 *
 * Contract (each point is pinned by the contract suite):
 * 1. `publish` is one atomic step per user stream: assign the next seq
 *    (1, 2, 3, … per epoch, no gap, no reuse), append to history (trimmed to
 *    `historySize`, expired after `historyTtlMs`), and fan out to every node
 *    subscribed to the user. Two publishes to one user never interleave.
 * 2. For a subscribed user, `onEvent` receives that user's events in seq
 *    order, each once, with no gap, unless `onResync` is raised for the user
 *    (the broker could not prove continuity: link loss, data loss); the
 *    gateway then re-reads history for that user's connections.
 * 3. `readHistory` is a consistent snapshot: `events` are exactly the stored
 *    events after the cursor, in order, and `headSeq` is the last seq at the
 *    moment of the read.
 * 4. A publish with an `id` already in the user's history window returns the
 *    first publish's seq with `duplicate: true` and fans out nothing.
 * 5. `ack` is cumulative and monotonic: the acked cursor only moves forward,
 *    and it is shared by every node.
 * 6. When the broker cannot do a step (engine unreachable), the promise
 *    rejects with `BrokerUnavailableError`: a publish gets a seq or an error,
 *    never a silent loss.
 * 7. `start` does not fail because the engine is unreachable: it resolves
 *    once its first attempt to reach the engine settled, and the broker keeps
 *    trying by itself; until it succeeds, `health()` is unhealthy and steps
 *    reject as in point 6. A node booted before its engine recovers without
 *    a restart.
 *
 * Optional, for operators across nodes (PROTOCOL.md section 5, the
 * connections endpoints, broadcast): `control` carries an operator command to
 * every node, `putConnections` / `listConnections` keep a shared, expiring
 * directory of each node's connections, and `putNodeLoad` / `nodeLoads` each
 * node's connection count. An engine of one process may leave the
 * directory out: the gateway then reports its own connections only.
 */
import type { ValidEvent } from '../protocol/event-input.js';

/** One stored event of a user stream. */
export interface StreamEvent {
  readonly seq: number;
  readonly id: string;
  readonly event: string;
  readonly critical: boolean;
  readonly ts: number;
  /**
   * The complete `event` frame, serialized once per publish and shared by
   * every connection and every node ("encode once, write many").
   */
  readonly frame: string;
  /** Set when a publisher waits for delivery: nodes report deliveries of it. */
  readonly awaitedBy?: string;
}

export interface PublishOptions {
  /**
   * The node id of a publisher that waits for delivery (`?wait=`). Nodes that
   * write the event, or see it acked, report it through `reportDelivery`.
   */
  awaitedBy?: string;
}

export interface PublishOutcome {
  seq: number;
  epoch: string;
  id: string;
  /** True when `id` repeated an earlier publish: nothing was sent again. */
  duplicate: boolean;
}

/** Where a reading connection starts. */
export type ReadCursor =
  /** Resume: events after `seq` of stream `epoch`. */
  | { kind: 'position'; seq: number; epoch: string }
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
  /** The first seq the read covers: the cursor + 1, or the first stored seq when `gap`. */
  from: number;
  /**
   * True when events after the cursor are missing: trimmed or expired, or the
   * cursor belongs to another epoch, or lies ahead of the head.
   */
  gap: boolean;
}

/** A node telling the publisher's node that an awaited event reached connections. */
export interface DeliveryReport {
  userId: string;
  /** The event's id: waiters are keyed by it, since they exist before the seq does. */
  id: string;
  seq: number;
  epoch: string;
  /** The node that waits (`StreamEvent.awaitedBy`). */
  awaitedBy: string;
  /** `written`: sent to `connections` sockets; `acked`: acked by `connections` sockets. */
  kind: 'written' | 'acked';
  connections: number;
}

/** An operator command for every node: close the user's connections there with `code`. */
export interface ControlMessage {
  kind: 'disconnect';
  userId: string;
  code: number;
}

/** One connection of a user as a node recorded it for operators on other nodes. */
export interface ConnectionRecord {
  node: string;
  connectionId: string;
  /** The gateway's snapshot of the connection, serialized; opaque to the broker. */
  snapshot: string;
}

/** Everything a broker delivers goes to these handlers, set once by `start`. */
export interface BrokerHandlers {
  /** A live event of a user this node is subscribed to. */
  onEvent(userId: string, epoch: string, event: StreamEvent): void;
  /** A broadcast frame (already serialized) for every open connection of this node. */
  onBroadcast(frame: string): void;
  /** Continuity of `userId`'s live events could not be proven: re-read history. */
  onResync(userId: string): void;
  /** A delivery report addressed to this node. */
  onDelivery(report: DeliveryReport): void;
  /** An operator command sent with `control` by any node, this one included. */
  onControl?(message: ControlMessage): void;
  /** The engine's reachability changed (for readiness and logs). */
  onHealthChange?(healthy: boolean, reason?: string): void;
}

export interface BrokerHealth {
  healthy: boolean;
  /** Why not, for `/readyz`. */
  reason?: string;
}

export interface Broker {
  /** A stable id for this node, used in delivery reports and the registry. */
  readonly nodeId: string;
  start(handlers: BrokerHandlers): Promise<void>;
  publish(userId: string, event: ValidEvent, options?: PublishOptions): Promise<PublishOutcome>;
  /** Sends a serialized broadcast frame to every node (this one included). */
  broadcast(frame: string): Promise<void>;
  /** This node holds a connection of `userId`: start receiving its live events. */
  subscribe(userId: string): Promise<void>;
  /** This node's last connection of `userId` is gone. */
  unsubscribe(userId: string): Promise<void>;
  readHistory(userId: string, cursor: ReadCursor): Promise<HistoryRead>;
  /**
   * Moves the user's acked cursor to `seq` if it is ahead. With `epoch`, the
   * ack counts only in that epoch: a late ack from a connection of an older
   * stream must not move the new stream's cursor past events nobody saw.
   */
  ack(userId: string, seq: number, epoch?: string): Promise<void>;
  reportDelivery(report: DeliveryReport): Promise<void>;
  /**
   * Optional housekeeping for engines that expire lazily (memory): drops the
   * events older than `historyTtlMs` at `now` and the empty, unsubscribed
   * streams idle that long. Resolves to how many events and streams it dropped.
   * Engines whose storage expires by itself (Redis) leave it out.
   */
  sweep?(now: number): Promise<number>;
  /**
   * Optional: delivers `message` to `onControl` on every node, this one
   * included (memory: a local call; Redis: a control channel). Resolves once
   * the engine took it; it is not stored, so a node that is cut off at that
   * moment never sees it.
   */
  control?(message: ControlMessage): Promise<void>;
  /**
   * Optional: replaces this node's records of `userId` with `records` (an
   * empty list removes them). Each record expires `ttlMs` after it was
   * written unless written again, so the records of a node that died vanish.
   */
  putConnections?(
    userId: string,
    records: readonly ConnectionRecord[],
    ttlMs: number,
  ): Promise<void>;
  /** Optional, with `putConnections`: every node's unexpired records of `userId`. */
  listConnections?(userId: string): Promise<ConnectionRecord[]>;
  /**
   * Optional: records how many connections this node holds; the figure
   * expires `ttlMs` after it was written unless written again.
   */
  putNodeLoad?(connections: number, ttlMs: number): Promise<void>;
  /** Optional, with `putNodeLoad`: every node's unexpired figure, by node id. */
  nodeLoads?(): Promise<Map<string, number>>;
  health(): BrokerHealth;
  close(): Promise<void>;
}

/** The engine could not do the step; callers answer 503 and retry later. */
export class BrokerUnavailableError extends Error {
  override readonly name = 'BrokerUnavailableError';
}

/**
 * Builds the `event` frame once. `dataJson` is already serialized by
 * validation, so the data is never stringified twice.
 */
export function encodeEventFrame(seq: number, id: string, ts: number, event: ValidEvent): string {
  // No JSON.stringify for the strings: validation restricts the event name,
  // ids, run ids and thread ids to characters that need no escaping in JSON
  // (EVENT_NAME_PATTERN, REF_PATTERN; generated ids are alphanumeric), so
  // quoting them is enough. `data` arrives serialized.
  let head = `{"type":"event","seq":${seq},"id":"${id}","event":"${event.event}"`;
  if (event.runId !== undefined) head += `,"runId":"${event.runId}"`;
  if (event.threadId !== undefined) head += `,"threadId":"${event.threadId}"`;
  return `${head},"ts":${ts},"critical":${event.critical},"data":${event.dataJson}}`;
}
