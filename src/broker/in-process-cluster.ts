/**
 * The in-process engine's shared state: the user streams, the presence store
 * and the bus between the nodes of one process. A lone `MemoryBroker` makes a
 * cluster of its own; several `MemoryBroker`s given one cluster are nodes of
 * one engine, as with Redis, so the cluster behaviour of the gateway (fan-out
 * across nodes, delivery reports, operator listing and disconnect) runs in
 * one process without Redis (as socket.io-adapter tests its adapters).
 *
 * The bus is synchronous: a broadcast, command or report reaches the other
 * nodes' handlers inside the call that sent it.
 *
 * @example
 * ```ts
 * const cluster = new InProcessCluster({ historySize: 500 });
 * const a = createGateway({ authenticator, broker: new MemoryBroker({ cluster, nodeId: 'a' }) });
 * const b = createGateway({ authenticator, broker: new MemoryBroker({ cluster, nodeId: 'b' }) });
 * ```
 */
import type { ControlMessage, DeliveryReport } from './cluster-bus.js';
import { MIN_RUN_SNAPSHOT_MAX_BYTES } from '../runs/run-snapshot.js';
import { positiveInteger } from '../options/validators.js';
import { MemoryPresence } from './memory-presence.js';
import { MemoryRuns } from './memory-runs.js';
import { MemoryStreams } from './memory-streams.js';
import { HISTORY_DEFAULTS, RUN_DEFAULTS } from './stream-defaults.js';

export interface InProcessClusterOptions {
  /** Events kept per user stream. Default 1000 (`HISTORY_DEFAULTS`). */
  historySize?: number;
  /** Lifetime of a stored event, in ms. Default 3 600 000 (1 h). */
  historyTtlMs?: number;
  /** User streams kept; past it the least recently used unsubscribed one is dropped. Default 100 000. */
  maxStreams?: number;
  /** Bytes of payloads kept per stream (UTF-8); oldest events dropped past it. Default 8 MiB. */
  maxStreamBytes?: number;
  /** Bytes of payloads kept by the whole engine. Default 512 MiB. */
  maxTotalBytes?: number;
  /** Lifetime of a run's snapshot after its last event, in ms. Default 24 h (`RUN_DEFAULTS`). */
  runTtlMs?: number;
  /** Size cap of one run snapshot's JSON, in bytes (at least 16 KiB). Default 4 MiB. */
  runSnapshotMaxBytes?: number;
  /** Runs kept per user; a new run drops the user's oldest. Default 100. */
  maxRunsPerUser?: number;
  /** Bytes of all run snapshots (at least `runSnapshotMaxBytes`). Default 256 MiB. */
  maxRunBytes?: number;
  /** The clock, in ms since the epoch: event timestamps and expiry. Default `Date.now`. */
  now?: () => number;
}

/** A node on the bus: what the cluster hands it. */
export interface BusMember {
  readonly nodeId: string;
  receiveBroadcast(frame: string): void;
  receiveControl(message: ControlMessage): void;
  receiveDelivery(report: DeliveryReport): void;
}

const MiB = 1024 * 1024;

export class InProcessCluster {
  readonly streams: MemoryStreams;
  readonly runs: MemoryRuns;
  readonly presence = new MemoryPresence();
  readonly now: () => number;
  /** The started nodes, by id. */
  private readonly members = new Map<string, BusMember>();

  constructor(options: InProcessClusterOptions = {}) {
    if (options.now !== undefined && typeof options.now !== 'function') {
      throw new TypeError('option now must be a function returning ms since the epoch');
    }
    this.now = options.now ?? Date.now;
    const runSnapshotMaxBytes = positiveInteger(
      'option runSnapshotMaxBytes',
      options.runSnapshotMaxBytes ?? RUN_DEFAULTS.runSnapshotMaxBytes,
    );
    if (runSnapshotMaxBytes < MIN_RUN_SNAPSHOT_MAX_BYTES) {
      throw new TypeError(
        `option runSnapshotMaxBytes must be at least ${MIN_RUN_SNAPSHOT_MAX_BYTES}`,
      );
    }
    const maxRunBytes = positiveInteger(
      'option maxRunBytes',
      options.maxRunBytes ?? RUN_DEFAULTS.maxRunBytes,
    );
    if (maxRunBytes < runSnapshotMaxBytes) {
      throw new TypeError('option maxRunBytes must be at least runSnapshotMaxBytes');
    }
    this.runs = new MemoryRuns({
      runTtlMs: positiveInteger('option runTtlMs', options.runTtlMs ?? RUN_DEFAULTS.runTtlMs),
      runSnapshotMaxBytes,
      maxRunsPerUser: positiveInteger(
        'option maxRunsPerUser',
        options.maxRunsPerUser ?? RUN_DEFAULTS.maxRunsPerUser,
      ),
      maxRunBytes,
    });
    this.streams = new MemoryStreams(
      {
        historySize: positiveInteger(
          'option historySize',
          options.historySize ?? HISTORY_DEFAULTS.historySize,
        ),
        historyTtlMs: positiveInteger(
          'option historyTtlMs',
          options.historyTtlMs ?? HISTORY_DEFAULTS.historyTtlMs,
        ),
        maxStreams: positiveInteger('option maxStreams', options.maxStreams ?? 100_000),
        maxStreamBytes: positiveInteger('option maxStreamBytes', options.maxStreamBytes ?? 8 * MiB),
        maxTotalBytes: positiveInteger('option maxTotalBytes', options.maxTotalBytes ?? 512 * MiB),
        now: this.now,
      },
      this.presence,
      this.runs,
    );
  }

  /** Puts a started node on the bus; node ids are unique within a cluster. */
  join(member: BusMember): void {
    if (this.members.has(member.nodeId)) {
      throw new Error(`InProcessCluster: node ${member.nodeId} already joined`);
    }
    this.members.set(member.nodeId, member);
  }

  /** Takes a node off the bus, with its presence. */
  leave(member: BusMember): void {
    if (this.members.get(member.nodeId) !== member) return;
    this.members.delete(member.nodeId);
    this.presence.forget(member.nodeId);
  }

  broadcast(frame: string): void {
    for (const member of this.members.values()) member.receiveBroadcast(frame);
  }

  control(message: ControlMessage): void {
    for (const member of this.members.values()) member.receiveControl(message);
  }

  report(report: DeliveryReport): void {
    this.members.get(report.awaitedBy)?.receiveDelivery(report);
  }

  /** Drops every stream and record: the engine is gone. */
  clear(): void {
    this.members.clear();
    this.streams.clear();
    this.runs.clear();
    this.presence.clear();
  }
}
