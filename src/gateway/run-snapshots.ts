/**
 * Which runs a connection gets as `run_snapshot` frames when it opens
 * (protocol 1.1, "Run snapshots"; only with `snapshots=1`), and what they
 * cover. After the history read, a run with events in the replay gets a
 * snapshot when
 * - it has more than `runSnapshotThreshold` events in the replay, or
 * - its `agent_started` is not in the replay and the connection has no usable
 *   cursor (none given, or a `gap`): the client cannot hold the run's start.
 * The snapshot is the engine's (`RunStore.readRun`), read after the history,
 * so it reaches at least as far as the replay; the run's events up to its
 * `upToSeq` are then not sent, in the replay or live.
 *
 * `gap` stays true only when something no snapshot covers is lost. The
 * gateway cannot see trimmed events, so it counts the lost seqs as covered
 * when they all fall within the spans (`startedSeq`..`upToSeq`) of the runs
 * sent as snapshots.
 */
import type { Logger } from 'pino';
import type { RunStore } from '../broker/run-store.js';
import type { HistoryRead, ReadCursor, StreamEvent } from '../broker/stream-engine.js';
import type { ReplayInfo, RunSnapshotFrame } from '../protocol/frames.js';
import type { RunSnapshot } from '../runs/run-types.js';
import type { ResolvedOptions } from './options.js';

/** How an event's run is found (`EventFramer.runIdOf`). */
export interface RunIdReader {
  runIdOf(event: StreamEvent): string | undefined;
}

/** What the snapshots sent on open cover: per run, the last seq its snapshot holds. */
export class RunCoverage {
  private readonly upToSeqs = new Map<string, number>();
  private highest = 0;

  add(runId: string, upToSeq: number): void {
    this.upToSeqs.set(runId, upToSeq);
    this.highest = Math.max(this.highest, upToSeq);
  }

  /** True when the event is in its run's snapshot. */
  covers(event: StreamEvent, runs: RunIdReader): boolean {
    if (event.seq > this.highest) return false;
    const runId = runs.runIdOf(event);
    const upToSeq = runId === undefined ? undefined : this.upToSeqs.get(runId);
    return upToSeq !== undefined && event.seq <= upToSeq;
  }
}

/** How a connection opens: the snapshots to send after `welcome`, what they cover, `welcome.replay`. */
export interface OpeningPlan {
  /** In the order of the runs' first events in the replay. */
  frames: RunSnapshotFrame[];
  /** Null when no snapshot is sent. */
  coverage: RunCoverage | null;
  replay: ReplayInfo;
}

/** What planning reads: the node's parts a connection has (`ConnectionHost`). */
export interface OpeningHost {
  readonly options: ResolvedOptions;
  readonly runs: RunStore;
  readonly framer: RunIdReader;
  readonly logger: Logger;
}

/** Plans the opening after the history read; without `snapshots`, the 1.0 opening. */
export async function planOpening(
  host: OpeningHost,
  userId: string,
  cursor: ReadCursor,
  read: HistoryRead,
  snapshots: boolean,
): Promise<OpeningPlan> {
  const plain: OpeningPlan = {
    frames: [],
    coverage: null,
    replay: { from: read.from, count: read.events.length, gap: read.gap },
  };
  if (!snapshots) return plain;
  const wanted = runsToSnapshot(host, cursor, read);
  const runs = await Promise.all(wanted.map((runId) => readRun(host, userId, runId)));
  const frames: RunSnapshotFrame[] = [];
  for (const run of runs) {
    // Another epoch's run says nothing about this stream's seqs.
    if (run === null || run.epoch !== read.epoch) continue;
    const { runId, upToSeq, epoch } = run;
    frames.push({ type: 'run_snapshot', runId, upToSeq, epoch, run });
  }
  if (frames.length === 0) return plain;
  const coverage = new RunCoverage();
  for (const frame of frames) coverage.add(frame.runId, frame.upToSeq);
  const count = read.events.filter((event) => !coverage.covers(event, host.framer)).length;
  return {
    frames,
    coverage,
    replay: {
      from: read.from,
      count,
      gap: read.gap && !lostIsCovered(read, cursor, frames),
      runs: frames.map(({ runId, upToSeq }) => ({ runId, upToSeq })),
    },
  };
}

interface RunInReplay {
  events: number;
  started: boolean;
}

/** The runs of the replay that meet the rule, in the order of their first events. */
function runsToSnapshot(host: OpeningHost, cursor: ReadCursor, read: HistoryRead): string[] {
  const usableCursor = cursor.kind === 'position' && !read.gap;
  const inReplay = new Map<string, RunInReplay>();
  for (const event of read.events) {
    const runId = host.framer.runIdOf(event);
    if (runId === undefined) continue;
    let run = inReplay.get(runId);
    if (run === undefined) inReplay.set(runId, (run = { events: 0, started: false }));
    run.events++;
    if (event.event === 'agent_started') run.started = true;
  }
  const threshold = host.options.limits.runSnapshotThreshold;
  return [...inReplay]
    .filter(([, run]) => run.events > threshold || (!run.started && !usableCursor))
    .map(([runId]) => runId);
}

async function readRun(
  host: OpeningHost,
  userId: string,
  runId: string,
): Promise<RunSnapshot | null> {
  try {
    return await host.runs.readRun(userId, runId);
  } catch (error) {
    // Without its snapshot the run is replayed as events, as for a 1.0 client.
    host.logger.warn({ userId, runId, err: (error as Error).message }, 'run snapshot read failed');
    return null;
  }
}
/** True when every lost seq (cursor + 1 .. `read.from` - 1) lies in a sent run's span. */
function lostIsCovered(
  read: HistoryRead,
  cursor: ReadCursor,
  frames: readonly RunSnapshotFrame[],
): boolean {
  const sameStream = cursor.kind === 'acked' || cursor.epoch === read.epoch;
  if (cursor.kind === 'position' && sameStream && cursor.seq > read.headSeq) return false;
  let next = !sameStream ? 1 : (cursor.kind === 'acked' ? read.ackedSeq : cursor.seq) + 1;
  const spans = frames
    .map((frame) => ({ from: frame.run.startedSeq, to: frame.upToSeq }))
    .sort((a, b) => a.from - b.from);
  for (const span of spans) {
    if (next >= read.from) break;
    if (span.from > next) return false;
    next = Math.max(next, span.to + 1);
  }
  return next >= read.from;
}
