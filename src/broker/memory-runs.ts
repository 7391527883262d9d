/**
 * The runs of the in-process engine (`run-store.ts`): each run's grammar
 * state and folded snapshot, per user, shared by every node of one
 * `InProcessCluster`. `MemoryStreams.publish` asks `check` before it assigns
 * the seq and calls `record` after it stored the event, in its one
 * synchronous step, so the grammar is checked atomically with the seq.
 *
 * Bounds, each with its eviction rule (runs are independent of the history:
 * they outlive trimmed and expired events):
 * - time: a run lives `runTtlMs` after its last event; dropped lazily on
 *   use and by `sweep`;
 * - runs per user: `maxRunsPerUser`; a new run drops the user's least
 *   recently updated one (as on Redis, whose index is ordered by update);
 * - one snapshot: `runSnapshotMaxBytes`, enforced by the fold (text cut,
 *   `truncated: true`);
 * - all snapshots: `maxRunBytes`; past it the least recently updated runs of
 *   the engine are dropped (the run being published to last).
 * A dropped run takes its grammar state with it: its next event is
 * `run_not_started`.
 */
import type { EncodedRunEvent } from '../protocol/event-frame.js';
import type { JsonValue } from '../protocol/frames.js';
import {
  checkRunEventArg,
  type RunGrammarState,
  type RunGrammarVerdict,
} from '../runs/run-grammar.js';
import { foldRunEvent, type RunEventRecord } from '../runs/run-snapshot.js';
import type { RunSnapshot } from '../runs/run-types.js';
import { compareRunsNewestFirst, publicRunSnapshot } from './run-store.js';

export interface MemoryRunsOptions {
  runTtlMs: number;
  runSnapshotMaxBytes: number;
  maxRunsPerUser: number;
  maxRunBytes: number;
}

interface RunEntry {
  readonly userId: string;
  readonly runId: string;
  /** Undefined while the run has no accepted `agent_started` (`warn`/`off` modes). */
  state: RunGrammarState | undefined;
  snapshot: RunSnapshot;
  /** The snapshot's bytes as last counted in `totalBytes`. */
  bytes: number;
  expiresAt: number;
}

/** What `MemoryRuns.stats()` reports. */
export interface MemoryRunsStats {
  runs: number;
  bytes: number;
}

/** One event of a run, stored at `seq` of stream `epoch`, as `record` folds it. */
export interface StoredRunEvent {
  readonly seq: number;
  readonly epoch: string;
  readonly ts: number;
  readonly event: string;
  readonly run: EncodedRunEvent;
}

function runKey(userId: string, runId: string): string {
  // User ids and run ids never hold a newline (validation patterns).
  return `${userId}\n${runId}`;
}

export class MemoryRuns {
  /** Every run, least recently updated first: the TTL and total-bytes eviction order. */
  private readonly runs = new Map<string, RunEntry>();
  /** Each user's runs, least recently updated first: the per-user eviction order. */
  private readonly byUser = new Map<string, Map<string, RunEntry>>();
  private totalBytes = 0;

  constructor(private readonly options: MemoryRunsOptions) {}

  /** The grammar's verdict on `event` for the run, without changing anything. */
  check(userId: string, event: string, run: EncodedRunEvent, now: number): RunGrammarVerdict {
    const entry = this.live(userId, run.runId, now);
    return checkRunEventArg(entry?.state, event, run.grammarArg);
  }

  /**
   * Folds a stored event into its run's snapshot; `next` is the grammar state
   * after it (undefined: the event broke the grammar and was published
   * anyway, the state stays as it was).
   */
  record(userId: string, stored: StoredRunEvent, next: RunGrammarState | undefined): void {
    const { run } = stored;
    const key = runKey(userId, run.runId);
    let entry = this.live(userId, run.runId, stored.ts);
    const record: RunEventRecord = {
      seq: stored.seq,
      epoch: stored.epoch,
      event: stored.event,
      data: JSON.parse(run.dataJson) as JsonValue,
      ts: stored.ts,
      runId: run.runId,
    };
    if (run.threadId !== undefined) record.threadId = run.threadId;
    const options = { maxBytes: this.options.runSnapshotMaxBytes };
    if (entry === undefined) {
      const snapshot = foldRunEvent(undefined, record, options);
      entry = { userId, runId: run.runId, state: next, snapshot, bytes: 0, expiresAt: 0 };
      this.add(key, entry);
    } else {
      foldRunEvent(entry.snapshot, record, options);
      if (next !== undefined) entry.state = next;
      // Most recently updated last, in both eviction orders.
      this.runs.delete(key);
      this.runs.set(key, entry);
      const runs = this.byUser.get(userId);
      runs?.delete(run.runId);
      runs?.set(run.runId, entry);
    }
    entry.expiresAt = stored.ts + this.options.runTtlMs;
    const bytes = entry.snapshot.sizeBytes ?? 0;
    this.totalBytes += bytes - entry.bytes;
    entry.bytes = bytes;
    this.enforceTotalBytes();
  }

  read(userId: string, runId: string, now: number): RunSnapshot | null {
    const entry = this.live(userId, runId, now);
    return entry === undefined ? null : publicRunSnapshot(entry.snapshot);
  }

  list(userId: string, limit: number, now: number): RunSnapshot[] {
    const runs = this.byUser.get(userId);
    if (runs === undefined) return [];
    const live: RunSnapshot[] = [];
    for (const entry of [...runs.values()]) {
      if (entry.expiresAt <= now) this.drop(entry);
      else live.push(entry.snapshot);
    }
    return live.sort(compareRunsNewestFirst).slice(0, limit).map(publicRunSnapshot);
  }

  /** Drops the runs whose TTL passed at `now`; returns how many. */
  sweep(now: number): number {
    let dropped = 0;
    // Least recently updated first, and the TTL counts from the last update:
    // the expired runs are a prefix of the map.
    for (const entry of this.runs.values()) {
      if (entry.expiresAt > now) break;
      this.drop(entry);
      dropped++;
    }
    return dropped;
  }

  stats(): MemoryRunsStats {
    return { runs: this.runs.size, bytes: this.totalBytes };
  }

  clear(): void {
    this.runs.clear();
    this.byUser.clear();
    this.totalBytes = 0;
  }

  /** The run's entry, unless it expired by `now` (then it is dropped). */
  private live(userId: string, runId: string, now: number): RunEntry | undefined {
    const entry = this.runs.get(runKey(userId, runId));
    if (entry !== undefined && entry.expiresAt <= now) {
      this.drop(entry);
      return undefined;
    }
    return entry;
  }

  private add(key: string, entry: RunEntry): void {
    let runs = this.byUser.get(entry.userId);
    if (runs === undefined) this.byUser.set(entry.userId, (runs = new Map()));
    while (runs.size >= this.options.maxRunsPerUser) {
      const oldest = runs.values().next().value;
      if (oldest === undefined) break;
      this.drop(oldest);
    }
    runs.set(entry.runId, entry);
    this.runs.set(key, entry);
  }

  private drop(entry: RunEntry): void {
    this.runs.delete(runKey(entry.userId, entry.runId));
    const runs = this.byUser.get(entry.userId);
    runs?.delete(entry.runId);
    if (runs !== undefined && runs.size === 0) this.byUser.delete(entry.userId);
    this.totalBytes -= entry.bytes;
  }

  /** Least recently updated runs go first; the one just updated is last in line. */
  private enforceTotalBytes(): void {
    while (this.totalBytes > this.options.maxRunBytes && this.runs.size > 1) {
      const oldest = this.runs.values().next().value;
      if (oldest === undefined) break;
      this.drop(oldest);
    }
  }
}
