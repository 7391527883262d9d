/**
 * Where an AG-UI stream of a run starts (issue 14, docs/ag-ui.md "How the
 * route chooses"): resume within history when the client sent a cursor of
 * the run's epoch and every event of the run is still in history (the run
 * folded up to the cursor feeds `resumeAtCursor`); otherwise snapshot mode
 * over the engine's run snapshot (`startFromSnapshot`). Reads history;
 * writes nothing.
 */
import type { Message } from '@ag-ui/core';
import type { StreamEngine, HistoryRead } from '../broker/stream-engine.js';
import { agentsocketEventOf } from '../agui/agentsocket-event.js';
import type { AguiPosition } from '../agui/agui-cursor.js';
import {
  AguiResumeError,
  resumeAtCursor,
  startFromSnapshot,
  type AguiStreamStart,
} from '../agui/agui-resume.js';
import type { AgentsocketEvent, StreamInterruptReason } from '../agui/agui-types.js';
import { GatewayError } from '../errors.js';
import { encodeEventFrame } from '../protocol/event-frame.js';
import { coalesceEvents, pendingItemOf } from '../runs/delta-coalescer.js';
import { foldRunEvent, type RunEventRecord } from '../runs/run-snapshot.js';
import type { RunSnapshot } from '../runs/run-types.js';

/** An event of the user's stream with its frame text (the coalescer merges frames). */
export interface HeldEvent {
  event: AgentsocketEvent;
  frame: string;
}

/** What a stream starts with. */
export interface PlannedStart {
  start: AguiStreamStart;
  /** The stream's epoch and the last seq the start covers; null: nothing follows. */
  position: { epoch: string; headSeq: number } | null;
  /** The run's events after the start's position, read from history. */
  tail: HeldEvent[];
  /** The start cannot be followed live (its stream is gone): end right after it. */
  interrupt?: StreamInterruptReason;
}

export interface StartRequest {
  userId: string;
  runId: string;
  position: AguiPosition | null;
  requestMessages: readonly Message[];
  threadId?: string;
}

/** Plans the start of a stream of `snapshot`'s run (the engine's latest). */
export async function planStart(
  streams: Pick<StreamEngine, 'readHistory'>,
  request: StartRequest,
  snapshot: RunSnapshot,
): Promise<PlannedStart> {
  const resumed =
    request.position === null
      ? null
      : await resumeWithinHistory(streams, request, snapshot, request.position);
  return resumed ?? (await fromSnapshot(streams, request, snapshot));
}

/** Null when the cursor cannot be resumed exactly from history (snapshot mode then). */
async function resumeWithinHistory(
  streams: Pick<StreamEngine, 'readHistory'>,
  request: StartRequest,
  snapshot: RunSnapshot,
  position: AguiPosition,
): Promise<PlannedStart | null> {
  if (position.epoch !== snapshot.epoch) return null;
  const read = await streams.readHistory(request.userId, {
    kind: 'position',
    epoch: snapshot.epoch,
    seq: snapshot.startedSeq - 1,
  });
  if (read.gap || read.epoch !== snapshot.epoch || position.seq > read.headSeq) return null;
  const events = runEventsOf(read, request.runId);
  const group = position.index === null ? undefined : cursorGroup(events, position.seq, read.epoch);
  // A part cursor's group is re-mapped, so the fold stops before its first seq.
  const foldBefore = group?.seqFrom ?? group?.seq ?? position.seq + 1;
  let folded: RunSnapshot | undefined;
  for (const { event } of events) {
    if (event.seq >= foldBefore) break;
    folded = foldRunEvent(folded, runEventRecord(event, request.runId));
  }
  if (folded === undefined) return null;
  let start: AguiStreamStart;
  try {
    start = resumeAtCursor({
      snapshot: folded,
      position,
      cursorEvent: group,
      ...(request.threadId !== undefined ? { threadId: request.threadId } : {}),
    });
  } catch (error) {
    if (!(error instanceof AguiResumeError)) throw error;
    // A cursor naming a part its event does not have was never sent: forged.
    if (error.code === 'index_outside_group') {
      throw new GatewayError('bad_request', `Last-Event-ID: ${error.message}`, 'Last-Event-ID');
    }
    return null;
  }
  return {
    start,
    position: { epoch: read.epoch, headSeq: read.headSeq },
    tail: events.filter(({ event }) => event.seq > position.seq),
  };
}

/** Snapshot mode: the engine's snapshot, then the events after its `upToSeq`. */
async function fromSnapshot(
  streams: Pick<StreamEngine, 'readHistory'>,
  request: StartRequest,
  snapshot: RunSnapshot,
): Promise<PlannedStart> {
  const start = startFromSnapshot({
    snapshot,
    requestMessages: request.requestMessages,
    ...(request.threadId !== undefined ? { threadId: request.threadId } : {}),
  });
  if (start.mapper.state.finished) return { start, position: null, tail: [] };
  const read = await streams.readHistory(request.userId, {
    kind: 'position',
    epoch: snapshot.epoch,
    seq: snapshot.upToSeq,
  });
  const tailFrom = snapshot.upToSeq + 1;
  // The stream the run lives in is gone: nothing of it can follow. A read of
  // another epoch cannot tell a move that kept the seqs (docs/redis.md) from
  // a stream started over (its seqs reused), so it never carries on: the
  // client resumes once the run's next event moved its snapshot along.
  if (read.epoch !== snapshot.epoch) {
    return { start, position: null, tail: [], interrupt: 'history_lost' };
  }
  // History trimmed between the snapshot read and this one: the run's events
  // after the snapshot came after the subscription began, so the live buffer
  // holds them; the stream takes them from there (`lastSeq + 1` on). A buffer
  // that overflowed meanwhile re-reads history, and that gap ends the stream
  // with history_lost: visible and resumable, never a silent hole.
  if (read.gap && read.from > tailFrom) {
    return { start, position: { epoch: read.epoch, headSeq: snapshot.upToSeq }, tail: [] };
  }
  // A gap before the tail lost no event of the run: those are in the snapshot.
  return {
    start,
    position: { epoch: read.epoch, headSeq: read.headSeq },
    tail: runEventsOf(read, request.runId).filter(({ event }) => event.seq >= tailFrom),
  };
}

/**
 * The event whose AG-UI group a part cursor at `seq` names, as the live
 * stream sent it: a delta that opened its part may have gone out merged with
 * the deltas after it (the coalescing window), as one frame `seqFrom`..`seq`
 * whose group re-opens the part. Its deltas are the run's consecutive deltas
 * of the same part up to `seq`; coalescing them again rebuilds that frame
 * (the same rules, the same cap on its text).
 */
function cursorGroup(
  events: readonly HeldEvent[],
  seq: number,
  epoch: string,
): AgentsocketEvent | undefined {
  const at = events.findIndex(({ event }) => event.seq === seq);
  if (at < 0) return undefined;
  const items = events.map(({ event, frame }) => pendingItemOf(frame, event));
  let from = at;
  for (;;) {
    const item = items[from]!;
    const before = items[from - 1];
    if (item.kind !== 'delta' || before?.kind !== 'delta') break;
    const samePart = before.event === item.event && before.messageId === item.messageId;
    if (!samePart || before.seq !== (item.seqFrom ?? item.seq) - 1) break;
    from -= 1;
  }
  if (from === at) return events[at]!.event;
  const frame = coalesceEvents(items.slice(from, at + 1)).frames.at(-1)!;
  return agentsocketEventOf(frame, epoch);
}

/** The read's events of run `runId`, as frames and events. */
function runEventsOf(read: HistoryRead, runId: string): HeldEvent[] {
  const marker = `"runId":"${runId}"`;
  const held: HeldEvent[] = [];
  for (const stored of read.events) {
    // Cheap filter first; the parsed frame decides.
    if (!stored.payload.includes(marker)) continue;
    const frame = encodeEventFrame(stored);
    const event = agentsocketEventOf(frame, read.epoch);
    if (event.runId === runId) held.push({ event, frame });
  }
  return held;
}

function runEventRecord(event: AgentsocketEvent, runId: string): RunEventRecord {
  const record: RunEventRecord = {
    seq: event.seq,
    epoch: event.epoch,
    event: event.event,
    data: event.data,
    ts: event.ts,
    runId,
  };
  if (event.seqFrom !== undefined) record.seqFrom = event.seqFrom;
  if (event.threadId !== undefined) record.threadId = event.threadId;
  return record;
}
