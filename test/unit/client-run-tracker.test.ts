/**
 * `client.runs` without a gateway: the RunTracker folds `run_snapshot`
 * frames, fetched snapshots and events (merged or not) into one snapshot per
 * run, never folding a seq twice, and stays bounded. Every expectation is the
 * engine's own fold of the whole run (`foldRunEvent` over its events one by
 * one): whatever mix of sources, the client ends with the same snapshot.
 */
import { describe, expect, it } from 'vitest';
import { RunTracker } from '../../src/client/run-tracker.js';
import type { EventFrame, RunSnapshotFrame } from '../../src/protocol/frames.js';
import { foldRunFrame } from '../../src/runs/run-snapshot.js';
import type { RunSnapshot } from '../../src/runs/run-types.js';
import { coalesceDeltas, demoRun, TEST_EPOCH, TEST_RUN_ID } from '../helpers/agent-run-events.js';

/** The frames as the client receives them (no `epoch` field on the wire). */
function frames(events = demoRun()): EventFrame[] {
  return events.map(({ epoch: _epoch, ...frame }) => ({ ...frame, type: 'event' }));
}

/** The run folded from `events` one by one: what every path must reach. */
function reference(events: readonly EventFrame[]): RunSnapshot {
  let run: RunSnapshot | undefined;
  for (const event of events) run = foldRunFrame(run, event, TEST_EPOCH);
  return run!;
}

/** Compares runs without `sizeBytes`, a size bound that may differ by path. */
function plain(run: RunSnapshot | undefined): Omit<RunSnapshot, 'sizeBytes'> | undefined {
  if (run === undefined) return undefined;
  const { sizeBytes: _size, ...rest } = structuredClone(run);
  return rest;
}

function tracker(limit = 100): {
  runs: RunTracker;
  changed: RunSnapshot[];
  stale: string[];
} {
  const changed: RunSnapshot[] = [];
  const stale: string[] = [];
  const runs = new RunTracker(limit, {
    changed: (run) => changed.push(structuredClone(run)),
    stale: (runId) => stale.push(runId),
  });
  return { runs, changed, stale };
}

function snapshotFrame(run: RunSnapshot): RunSnapshotFrame {
  return { type: 'run_snapshot', runId: run.runId, upToSeq: run.upToSeq, epoch: run.epoch, run };
}

describe('RunTracker (client.runs)', () => {
  it('folds every event of a run and reports each change', () => {
    const { runs, changed } = tracker();
    const all = frames();
    for (const event of all) runs.onEvent(event, TEST_EPOCH);
    expect(plain(runs.runs.get(TEST_RUN_ID))).toEqual(plain(reference(all)));
    expect(changed).toHaveLength(all.length);
    expect(changed.at(-1)!.status).toBe('succeeded');
    expect(runs.isStartless(TEST_RUN_ID)).toBe(false);
  });

  it('folds merged deltas (seqFrom..seq) as the whole range they stand for', () => {
    const { runs } = tracker();
    const merged = coalesceDeltas(demoRun());
    expect(merged.length).toBeLessThan(demoRun().length);
    for (const event of frames(merged)) runs.onEvent(event, TEST_EPOCH);
    expect(plain(runs.runs.get(TEST_RUN_ID))).toEqual(plain(reference(frames())));
  });

  it('skips the events a run_snapshot frame already holds, then folds the rest', () => {
    const { runs } = tracker();
    const all = frames();
    runs.onSnapshotFrame(snapshotFrame(reference(all.slice(0, 5))));
    // A replay that repeats events up to the snapshot's upToSeq changes nothing.
    for (const event of all) runs.onEvent(event, TEST_EPOCH);
    expect(plain(runs.runs.get(TEST_RUN_ID))).toEqual(plain(reference(all)));
  });

  it('replaces a fold with a newer fetched snapshot, and keeps it against an older one', () => {
    const { runs } = tracker();
    const all = frames();
    for (const event of all.slice(0, 4)) runs.onEvent(event, TEST_EPOCH);
    expect(runs.merge([reference(all.slice(0, 7))], TEST_EPOCH, [])).toHaveLength(1);
    expect(runs.runs.get(TEST_RUN_ID)!.upToSeq).toBe(7);
    // An older snapshot than what the client holds (with its start) changes nothing.
    expect(runs.merge([reference(all.slice(0, 3))], TEST_EPOCH, [])).toEqual([]);
    for (const event of all.slice(4)) runs.onEvent(event, TEST_EPOCH);
    expect(plain(runs.runs.get(TEST_RUN_ID))).toEqual(plain(reference(all)));
  });

  it('completes a run folded without its start from an older snapshot plus the recent events', () => {
    const { runs } = tracker();
    const all = frames();
    // A reload resumed from seq 4: the client saw 5..8 only.
    const seen = all.slice(4, 8);
    for (const event of seen) runs.onEvent(event, TEST_EPOCH);
    expect(runs.isStartless(TEST_RUN_ID)).toBe(true);
    expect(runs.runs.get(TEST_RUN_ID)!.agent).toBe('');
    // GET /v1/runs read the run at seq 6; the recent events bring it to 8.
    runs.merge([reference(all.slice(0, 6))], TEST_EPOCH, seen);
    expect(runs.isStartless(TEST_RUN_ID)).toBe(false);
    expect(plain(runs.runs.get(TEST_RUN_ID))).toEqual(plain(reference(all.slice(0, 8))));
    for (const event of all.slice(8)) runs.onEvent(event, TEST_EPOCH);
    expect(plain(runs.runs.get(TEST_RUN_ID))).toEqual(plain(reference(all)));
  });

  it('keeps a startless fold when the recent events no longer reach back to an older snapshot', () => {
    const { runs } = tracker();
    const all = frames();
    const seen = all.slice(6, 8);
    for (const event of seen) runs.onEvent(event, TEST_EPOCH);
    const before = plain(runs.runs.get(TEST_RUN_ID));
    // Snapshot at seq 3, recent events from seq 7: seqs 4..6 are in neither.
    expect(runs.merge([reference(all.slice(0, 3))], TEST_EPOCH, seen)).toEqual([]);
    expect(plain(runs.runs.get(TEST_RUN_ID))).toEqual(before);
  });

  it('asks for a fresh snapshot when a merged delta straddles a fetched one, then folds nothing twice', () => {
    const { runs, stale } = tracker();
    const all = frames();
    // Fetched at seq 2 (one thinking delta folded); the replay merged deltas 2..4.
    runs.merge([reference(all.slice(0, 2))], TEST_EPOCH, []);
    const merged = frames(coalesceDeltas(demoRun()));
    const straddling = merged.find((e) => e.seqFrom === 2)!;
    expect(straddling.seq).toBe(4);
    const delivered: EventFrame[] = [];
    for (const event of merged.filter((e) => e.seq >= 4)) {
      delivered.push(event);
      runs.onEvent(event, TEST_EPOCH);
    }
    expect(stale).toEqual([TEST_RUN_ID]);
    // Held back until the fresh snapshot: the text of seqs 2..4 is not doubled.
    expect(runs.runs.get(TEST_RUN_ID)!.upToSeq).toBe(2);
    runs.merge([reference(all.slice(0, 6))], TEST_EPOCH, delivered);
    expect(plain(runs.runs.get(TEST_RUN_ID))).toEqual(plain(reference(all)));
  });

  it('folds again after a failed refresh rather than freezing the run', () => {
    const { runs, stale } = tracker();
    const all = frames();
    runs.merge([reference(all.slice(0, 2))], TEST_EPOCH, []);
    runs.onEvent({ ...all[3]!, seqFrom: 2, data: { text: 'xy' } }, TEST_EPOCH);
    expect(stale).toEqual([TEST_RUN_ID]);
    runs.refreshFailed(TEST_RUN_ID);
    runs.onEvent(all[4]!, TEST_EPOCH);
    expect(runs.runs.get(TEST_RUN_ID)!.upToSeq).toBe(5);
  });

  it('does not hold a stale run back for good when its fresh snapshot cannot be used', () => {
    const { runs, stale } = tracker();
    const all = frames();
    runs.merge([reference(all.slice(0, 2))], TEST_EPOCH, []);
    runs.onEvent({ ...all[3]!, seqFrom: 2, data: { text: 'xy' } }, TEST_EPOCH);
    expect(stale).toEqual([TEST_RUN_ID]);
    // The fresh snapshot is at seq 3 but the recent events no longer reach back to it.
    runs.merge([reference(all.slice(0, 3))], TEST_EPOCH, [all[6]!]);
    runs.onEvent(all[4]!, TEST_EPOCH);
    expect(runs.runs.get(TEST_RUN_ID)!.upToSeq).toBe(5);
  });

  it('folds events of another epoch onto a run of the old one (seqs restart)', () => {
    const { runs } = tracker();
    const all = frames();
    for (const event of all.slice(0, 5)) runs.onEvent(event, TEST_EPOCH);
    runs.onEvent({ ...all[1]!, seq: 1 }, 'e_new');
    const run = runs.runs.get(TEST_RUN_ID)!;
    expect(run.epoch).toBe('e_new');
    expect(run.upToSeq).toBe(1);
  });

  it('ignores events without a runId', () => {
    const { runs, changed } = tracker();
    runs.onEvent({ ...frames()[0]!, runId: undefined, event: 'note' }, TEST_EPOCH);
    expect(runs.runs.size).toBe(0);
    expect(changed).toEqual([]);
  });

  it('keeps at most `limit` runs, dropping the one added first', () => {
    const { runs } = tracker(3);
    for (let i = 1; i <= 5; i++) {
      const [started] = frames();
      runs.onEvent({ ...started!, seq: i, runId: `run-${i}` }, TEST_EPOCH);
    }
    expect([...runs.runs.keys()]).toEqual(['run-3', 'run-4', 'run-5']);
    // Past the bound through fetched snapshots too.
    const fetched = [6, 7].map((i) => ({ ...reference(frames().slice(0, 1)), runId: `run-${i}` }));
    runs.merge(fetched, TEST_EPOCH, []);
    expect([...runs.runs.keys()]).toEqual(['run-5', 'run-6', 'run-7']);
  });
});
