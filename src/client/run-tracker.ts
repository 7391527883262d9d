/**
 * `client.runs`: each run of the user's stream folded into its `RunSnapshot`
 * (src/runs/run-snapshot.ts) from three sources that overlap:
 * - `run_snapshot` frames (a run folded by the gateway up to `upToSeq`);
 * - snapshots fetched over HTTP (`fetchRuns`, `GET /v1/runs`);
 * - events, live and replayed, merged deltas (`seqFrom`..`seq`) included.
 *
 * The one rule that keeps them from counting anything twice: a run's events
 * are folded in seq order, so an event with `seq <= run.upToSeq` (same epoch)
 * is already in the snapshot and is skipped. A snapshot replaces the folded
 * state when it is newer (a higher `upToSeq`, or the current epoch).
 *
 * The one case the rule cannot settle: a merged delta that straddles a
 * snapshot fetched over HTTP (`seqFrom <= upToSeq < seq`). The gateway never
 * sends one across its own `run_snapshot`, but the replay after a reload is
 * merged independently of what `GET /v1/runs` read a moment before. The text
 * of the seqs already folded cannot be cut out of the merged text, so the run
 * is marked stale and refreshed from the gateway (`GET /v1/runs/{runId}`,
 * whose snapshot is at least as new), then the recent events after that
 * snapshot are folded on top. Nothing is ever folded twice.
 *
 * Bounded: at most `limit` runs; past it the run that was added first goes.
 * Snapshots are the SDK's and are updated in place: copy one
 * (`structuredClone`) to keep a state.
 */
import type { EventFrame, RunSnapshotFrame } from '../protocol/frames.js';
import { foldRunFrame } from '../runs/run-snapshot.js';
import type { RunSnapshot } from '../runs/run-types.js';

/** Default bound of `client.runs`: the gateway keeps the 100 most recent runs per user too. */
export const DEFAULT_RUNS_LIMIT = 100;

export interface RunTrackerHooks {
  /** A run changed (emitted as the client's `run` event). */
  changed(run: RunSnapshot): void;
  /** A merged delta straddled a fetched snapshot: the run needs a fresh snapshot. */
  stale(runId: string): void;
}

export class RunTracker {
  readonly #runs = new Map<string, RunSnapshot>();
  readonly #limit: number;
  readonly #hooks: RunTrackerHooks;
  /** Runs folded from a later event without their `agent_started` (nor a snapshot). */
  readonly #startless = new Set<string>();
  /** Runs waiting for a fresh snapshot: their events are held back until it comes. */
  readonly #stale = new Set<string>();

  constructor(limit: number, hooks: RunTrackerHooks) {
    this.#limit = limit;
    this.#hooks = hooks;
  }

  get runs(): ReadonlyMap<string, RunSnapshot> {
    return this.#runs;
  }

  /** Whether `runId`'s state was folded without its start (the app may show "start missed"). */
  isStartless(runId: string): boolean {
    return this.#startless.has(runId);
  }

  /** A `run_snapshot` frame: the gateway's fold, consistent with the events that follow it. */
  onSnapshotFrame(frame: RunSnapshotFrame): void {
    // The frame's `upToSeq` is what the gateway skips from here on.
    const run: RunSnapshot = {
      ...frame.run,
      runId: frame.runId,
      epoch: frame.epoch,
      upToSeq: Math.max(frame.run.upToSeq, frame.upToSeq),
    };
    this.#set(run);
    this.#stale.delete(run.runId);
    this.#hooks.changed(run);
  }

  /** The fresh snapshot of a stale run could not be had: its later events fold again. */
  refreshFailed(runId: string): void {
    this.#stale.delete(runId);
  }

  /** A delivered event (new to the client, in seq order). */
  onEvent(frame: EventFrame, epoch: string): void {
    const runId = frame.runId;
    if (runId === undefined || this.#stale.has(runId)) return;
    const run = this.#runs.get(runId);
    if (run !== undefined && run.epoch === epoch && frame.seq <= run.upToSeq) return;
    if (run !== undefined && run.epoch === epoch && (frame.seqFrom ?? frame.seq) <= run.upToSeq) {
      this.#stale.add(runId);
      this.#hooks.stale(runId);
      return;
    }
    const folded = foldRunFrame(run, frame, epoch)!;
    if (run === undefined) {
      this.#set(folded);
      if (frame.event !== 'agent_started') this.#startless.add(runId);
    }
    this.#hooks.changed(folded);
  }

  /**
   * Snapshots fetched over HTTP, merged in (see the file comment), then the
   * recent events after each are folded on top. Returns the runs that changed.
   */
  merge(
    fetched: readonly RunSnapshot[],
    epoch: string | null,
    recent: readonly EventFrame[],
  ): RunSnapshot[] {
    const changed: RunSnapshot[] = [];
    for (const snapshot of fetched) {
      const current = this.#runs.get(snapshot.runId);
      if (!this.#isNewer(snapshot, current, epoch)) continue;
      const run = this.#rebuild(snapshot, epoch, recent);
      if (run === null) {
        // A stale run's events fold again rather than wait for good.
        this.#stale.delete(snapshot.runId);
        continue;
      }
      this.#set(run);
      this.#stale.delete(run.runId);
      changed.push(run);
      this.#hooks.changed(run);
    }
    return changed;
  }

  /** Forgets every run (the app's choice, e.g. on logout). */
  clear(): void {
    this.#runs.clear();
    this.#startless.clear();
    this.#stale.clear();
  }

  #isNewer(snapshot: RunSnapshot, current: RunSnapshot | undefined, epoch: string | null): boolean {
    if (current === undefined || this.#stale.has(snapshot.runId)) return true;
    if (current.epoch !== snapshot.epoch) return snapshot.epoch === epoch;
    if (snapshot.upToSeq >= current.upToSeq) return true;
    // An older snapshot still beats a fold that lacks the run's start, when the
    // recent events can bring it forward (#rebuild).
    return this.#startless.has(snapshot.runId);
  }

  /**
   * `snapshot` with the recent events of its run after `upToSeq` folded on
   * top; null when those events are not all still held (the recent events no
   * longer reach back to `upToSeq`) or one straddles it.
   */
  #rebuild(
    snapshot: RunSnapshot,
    epoch: string | null,
    recent: readonly EventFrame[],
  ): RunSnapshot | null {
    let run = structuredClone(snapshot);
    if (snapshot.epoch !== epoch) return run;
    const after = recent.filter((e) => e.runId === run.runId && e.seq > snapshot.upToSeq);
    if (after.length === 0) return run;
    const oldest = recent[0]!;
    // Events of the run between the snapshot and the recent window may be gone.
    if ((oldest.seqFrom ?? oldest.seq) > snapshot.upToSeq + 1) return null;
    for (const event of after) {
      if ((event.seqFrom ?? event.seq) <= run.upToSeq) return null;
      run = foldRunFrame(run, event, epoch)!;
    }
    return run;
  }

  #set(run: RunSnapshot): void {
    this.#startless.delete(run.runId);
    // Replacing keeps the run's place; a new run goes last.
    this.#runs.set(run.runId, run);
    while (this.#runs.size > this.#limit) {
      const oldest = this.#runs.keys().next().value as string;
      this.#runs.delete(oldest);
      this.#startless.delete(oldest);
      this.#stale.delete(oldest);
    }
  }
}
