/**
 * The run store seam (protocol 1.1): the engine keeps a snapshot of each run
 * (the events of one user with one `runId`), folded with `foldRunEvent` as
 * the run's events are published (`stream-engine.ts`, point 7). One of the
 * parts of a `Broker`, beside `stream-engine.ts`, `cluster-bus.ts` and
 * `presence-store.ts`.
 *
 * Contract (pinned by test/contract/broker-contract.ts on every engine):
 * 1. A run's snapshot is the fold of every accepted event of the run, in seq
 *    order: both engines answer the same snapshot for the same events.
 * 2. Snapshots live `runTtlMs` after their run's last event, independent of
 *    the history (they outlive trimmed and expired events), capped at
 *    `runSnapshotMaxBytes` (past it text is cut and `truncated: true`).
 * 3. A user keeps at most `maxRunsPerUser` runs: a new run drops the oldest
 *    (its grammar state with it: a later event of it is `run_not_started`).
 * 4. Snapshots come without `sizeBytes` (the fold's own bookkeeping).
 */
import type { RunSnapshot } from '../runs/run-types.js';

export interface RunStore {
  /** The run's snapshot, folded up to the last event the engine stored for it; null when unknown or expired. */
  readRun(userId: string, runId: string): Promise<RunSnapshot | null>;
  /** The user's most recent runs, newest first (by startedSeq within the epoch, then startedAt), at most `limit`. */
  listRuns(userId: string, limit: number): Promise<RunSnapshot[]>;
}

/** Newest first: started later, or later in the same epoch. The one order of `listRuns`. */
export function compareRunsNewestFirst(a: RunSnapshot, b: RunSnapshot): number {
  if (a.epoch === b.epoch && a.startedSeq !== b.startedSeq) return b.startedSeq - a.startedSeq;
  return b.startedAt - a.startedAt;
}

/** A snapshot as `readRun` answers it: without the fold's `sizeBytes`. */
export function publicRunSnapshot(run: RunSnapshot): RunSnapshot {
  const copy = structuredClone(run);
  delete copy.sizeBytes;
  return copy;
}
