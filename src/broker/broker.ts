/**
 * The Broker: the engine of a gateway node, made of three seams, each in its
 * own file with its contract:
 * - `stream-engine.ts`: per-user streams (publish with dedupe, history,
 *   acks, subscriptions, sweep);
 * - `cluster-bus.ts`: broadcasts, operator commands, delivery reports;
 * - `presence-store.ts`: the connections directory and node loads;
 * - `run-store.ts`: the runs' snapshots, folded in `publish`.
 *
 * The gateway owns sockets; the broker never touches them and hands
 * everything it delivers to one set of handlers.
 *
 * Implementations: `memory-broker.ts` (one process: one node, or several
 * nodes of one `InProcessCluster`) and `redis/redis-broker.ts` (any number of
 * processes). `test/contract/broker-contract.ts` is the one suite all pass.
 *
 * Lifecycle (pinned by the contract suite): `start` does not fail because
 * the engine is unreachable: it resolves once its first attempt to reach the
 * engine settled, and the broker keeps trying by itself; until it succeeds,
 * `health()` is unhealthy and steps reject with `BrokerUnavailableError`. A
 * node booted before its engine recovers without a restart.
 */
import type { BusHandlers, ClusterBus } from './cluster-bus.js';
import type { PresenceStore } from './presence-store.js';
import type { RunStore } from './run-store.js';
import type { StreamEngine, StreamHandlers } from './stream-engine.js';

export type {
  HistoryRead,
  RunGrammarMode,
  PublishOptions,
  PublishOutcome,
  ReadCursor,
  StreamEngine,
  StreamEvent,
  StreamHandlers,
} from './stream-engine.js';
export type { BusHandlers, ClusterBus, ControlMessage, DeliveryReport } from './cluster-bus.js';
export type { ConnectionRecord, PresenceStore } from './presence-store.js';
export type { RunStore } from './run-store.js';
export type { EncodedEvent, StreamPosition } from '../protocol/event-frame.js';

/** Everything a broker delivers goes to these handlers, set once by `start`. */
export interface BrokerHandlers extends StreamHandlers, BusHandlers {
  /** The engine's reachability changed (for readiness and logs). */
  onHealthChange?(healthy: boolean, reason?: string): void;
}

export interface BrokerHealth {
  healthy: boolean;
  /** Why not, for `/readyz`. */
  reason?: string;
  /**
   * Whether the engine's storage proves that its own restart keeps every
   * acknowledged write (Redis: `appendonly yes` + `appendfsync always`, read
   * from its config), with the settings in words. Absent when the engine has
   * nothing to restart apart from the node (memory) or was never reached.
   */
  persistence?: { proven: boolean; summary: string };
  /**
   * Redis Cluster: each shard (its master's `host:port`), whether this node
   * reaches it, the slots it serves, and the failovers and slot moves this
   * node saw. Absent on other engines.
   */
  shards?: {
    address: string;
    ready: boolean;
    slots: number;
    failovers: number;
    slotMoves: number;
  }[];
}

export interface Broker extends StreamEngine, ClusterBus, PresenceStore, RunStore {
  /** A stable id for this node, used in delivery reports and the presence store. */
  readonly nodeId: string;
  start(handlers: BrokerHandlers): Promise<void>;
  health(): BrokerHealth;
  close(): Promise<void>;
}

/** The engine could not do the step; callers answer 503 and retry later. */
export class BrokerUnavailableError extends Error {
  override readonly name = 'BrokerUnavailableError';
}
