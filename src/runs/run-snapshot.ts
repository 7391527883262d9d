/**
 * Folding the events of one run into its `RunSnapshot` as they are published
 * (engines) or received (client SDK), one event or merged delta at a time.
 *
 * Parts:
 * - consecutive `agent_thinking` deltas form one reasoning part, id `r<seq>`
 *   of its first delta;
 * - consecutive `agent_text` deltas of one `messageId` form one text part,
 *   id the `messageId` (or `m<seq>` without one; `<messageId>:<seq>` when that
 *   message already has a part);
 * - `tool_executing` opens a tool part, `tool_completed` of its `toolCallId`
 *   completes it (`failed` when its `error` is set and not null);
 * - any other kind of event (and a delta of another kind or message) closes
 *   the open reasoning or text part; the next delta opens a new one.
 * A merged delta (`seqFrom`..`seq`) folds exactly like its deltas one by one:
 * ids come from `seqFrom`, the first seq it stands for.
 *
 * Cost: a delta appends its text to the open part (a string concatenation)
 * and adds its JSON size to `sizeBytes`; nothing is kept per delta. The
 * snapshot is therefore updated IN PLACE and returned: the caller owns it
 * (copy it first, e.g. with `structuredClone`, to keep the previous state).
 *
 * Size cap (`maxBytes`, default 4 MiB of JSON): when `sizeBytes` passes it,
 * the fold cuts the snapshot down to three quarters of the cap in one go (so
 * the cutting is paid once per quarter of the cap, not per delta) and sets
 * `truncated: true`. What goes, in this order, until it fits:
 * 1. reasoning text, oldest part first, from the START of each part (the end
 *    of a text, where the run is now, is what a reader resumes into);
 * 2. answer text (text parts), the same way;
 * 3. tool payloads (`args` becomes null, `result` and `error` go), oldest first;
 * 4. whole parts, oldest first, never the last one.
 * So the later parts and every tool call (its id, tool and status) survive
 * the longest. The cap holds when it is at least a few times the largest
 * event data (default limit 256 KiB) and the `completed` result.
 */
import { utf8ByteLength } from '../protocol/event-input.js';
import type { AgentRunStatus } from '../protocol/agent-events.js';
import type { EventFrame, JsonValue } from '../protocol/frames.js';
import type { MergedDelta } from '../protocol/merged-frame.js';
import { reasoningPartId, textPartId } from './part-ids.js';
import type { RunCompletion, RunPart, RunSnapshot, TextPart, ToolPart } from './run-types.js';

/** Default size cap of a snapshot's JSON: 4 MiB. */
export const DEFAULT_RUN_SNAPSHOT_MAX_BYTES = 4 * 1024 * 1024;
/** The smallest cap accepted: below it the head and a tool part alone may not fit. */
export const MIN_RUN_SNAPSHOT_MAX_BYTES = 16 * 1024;
/** A cut brings the snapshot down to this share of the cap. */
const CUT_TO_SHARE = 0.75;
/**
 * Room for what `sizeBytes` does not follow per delta: the digits of
 * `upToSeq`, `updatedAt` and `sizeBytes` growing between two measures.
 */
const SIZE_SLACK = 64;
const TRUNCATED_FIELD_BYTES = ',"truncated":true'.length;

/** One event of a run as the fold needs it (a stored event, a frame, a merged delta). */
export interface RunEventRecord {
  seq: number;
  /** A merged delta: the first seq it stands for (its deltas' texts are in `data.text`). */
  seqFrom?: number;
  epoch: string;
  event: string;
  data: JsonValue;
  ts: number;
  runId: string;
  threadId?: string;
}

export interface RunSnapshotOptions {
  /** Size cap of the snapshot's JSON in bytes. Default {@link DEFAULT_RUN_SNAPSHOT_MAX_BYTES}. */
  maxBytes?: number;
}

type DataRecord = { [key: string]: JsonValue };

function isRecord(value: JsonValue): value is DataRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Bytes of `text` inside a JSON string, quotes excluded, as `JSON.stringify`
 * writes it: escapes for `"`, `\` and control characters, UTF-8 for the rest,
 * `\uXXXX` for a lone surrogate.
 */
export function jsonStringBytes(text: string, from = 0, to = text.length): number {
  let bytes = 0;
  for (let i = from; i < to; i++) {
    const unit = text.charCodeAt(i);
    if (unit === 0x22 || unit === 0x5c) bytes += 2;
    else if (unit < 0x20)
      bytes += unit === 8 || unit === 9 || unit === 10 || unit === 12 || unit === 13 ? 2 : 6;
    else if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (
      unit >= 0xd800 &&
      unit <= 0xdbff &&
      isLowSurrogate(text.charCodeAt(i + 1)) &&
      i + 1 < to
    ) {
      bytes += 4;
      i++;
    } else if (unit >= 0xd800 && unit <= 0xdfff) bytes += 6;
    else bytes += 3;
  }
  return bytes;
}

function isLowSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}

function jsonBytes(value: unknown): number {
  return utf8ByteLength(JSON.stringify(value));
}

/** A part's share of the snapshot's JSON, its comma included. */
function partBytes(part: RunPart): number {
  return jsonBytes(part) + 1;
}

/** The snapshot's JSON with its parts left out (the fold follows those one by one). */
function headBytes(run: RunSnapshot): number {
  return jsonBytes({ ...run, parts: [] });
}

/**
 * Measures a snapshot from scratch, as `sizeBytes` counts it: for one that
 * comes without `sizeBytes` (an engine may store snapshots without it).
 */
export function measureRunSnapshot(run: RunSnapshot): number {
  return jsonBytes({ ...run, sizeBytes: undefined }) + SIZE_SLACK;
}

function checkedMaxBytes(options: RunSnapshotOptions): number {
  const maxBytes = options.maxBytes ?? DEFAULT_RUN_SNAPSHOT_MAX_BYTES;
  if (!Number.isInteger(maxBytes) || maxBytes < MIN_RUN_SNAPSHOT_MAX_BYTES) {
    throw new RangeError(`maxBytes must be an integer of at least ${MIN_RUN_SNAPSHOT_MAX_BYTES}`);
  }
  return maxBytes;
}

function newSnapshot(record: RunEventRecord, first: number): RunSnapshot {
  const run: RunSnapshot = {
    runId: record.runId,
    agent: '',
    status: 'running',
    startedSeq: first,
    upToSeq: record.seq,
    epoch: record.epoch,
    startedAt: record.ts,
    updatedAt: record.ts,
    parts: [],
  };
  if (record.threadId !== undefined) run.threadId = record.threadId;
  run.sizeBytes = measureRunSnapshot(run);
  return run;
}

function closeOpenPart(run: RunSnapshot): void {
  const last = run.parts[run.parts.length - 1];
  if (last !== undefined && last.kind !== 'tool' && last.open) {
    last.open = false;
    run.sizeBytes! += 1; // "true" -> "false"
  }
}

function addPart(run: RunSnapshot, part: RunPart): void {
  run.parts.push(part);
  run.sizeBytes! += partBytes(part);
}

function appendDelta(run: RunSnapshot, event: string, data: DataRecord, first: number): void {
  const text = typeof data.text === 'string' ? data.text : '';
  const last = run.parts[run.parts.length - 1];
  if (event === 'agent_thinking') {
    if (last?.kind === 'reasoning' && last.open) {
      last.text += text;
      run.sizeBytes! += jsonStringBytes(text);
      return;
    }
    closeOpenPart(run);
    addPart(run, { kind: 'reasoning', id: reasoningPartId(first), text, open: true });
    return;
  }
  const messageId = typeof data.messageId === 'string' ? data.messageId : undefined;
  if (last?.kind === 'text' && last.open && last.messageId === messageId) {
    last.text += text;
    run.sizeBytes! += jsonStringBytes(text);
    return;
  }
  closeOpenPart(run);
  const usedBefore =
    messageId !== undefined &&
    run.parts.some((part) => part.kind === 'text' && part.messageId === messageId);
  const part: TextPart = {
    kind: 'text',
    id: textPartId(first, messageId, usedBefore),
    text,
    open: true,
  };
  if (messageId !== undefined) part.messageId = messageId;
  addPart(run, part);
}

function completeTool(run: RunSnapshot, data: DataRecord): void {
  const toolCallId = typeof data.toolCallId === 'string' ? data.toolCallId : '';
  let part: ToolPart | undefined;
  for (let i = run.parts.length - 1; i >= 0 && part === undefined; i--) {
    const candidate = run.parts[i]!;
    if (candidate.kind === 'tool' && candidate.toolCallId === toolCallId) part = candidate;
  }
  if (part === undefined) {
    // Only without the grammar (warn/off): a completion of a call never seen.
    const tool = typeof data.tool === 'string' ? data.tool : '';
    part = { kind: 'tool', toolCallId, tool, args: null, status: 'running' };
    addPart(run, part);
  }
  run.sizeBytes! -= partBytes(part);
  const failed = data.error !== undefined && data.error !== null;
  part.status = failed ? 'failed' : 'completed';
  if (data.result !== undefined) part.result = data.result;
  if (data.error !== undefined) part.error = data.error;
  if (typeof data.durationMs === 'number') part.durationMs = data.durationMs;
  run.sizeBytes! += partBytes(part);
}

const RUN_STATUSES: readonly AgentRunStatus[] = ['succeeded', 'failed', 'cancelled'];

function complete(run: RunSnapshot, data: DataRecord): void {
  const status = RUN_STATUSES.find((s) => s === data.status) ?? 'failed';
  const completed: RunCompletion = { status };
  if (data.result !== undefined) completed.result = data.result;
  if (data.error !== undefined) completed.error = data.error;
  if (data.usage !== undefined) completed.usage = data.usage;
  const open = run.parts.flatMap((part) =>
    part.kind === 'tool' && part.status === 'running' ? [part.toolCallId] : [],
  );
  if (open.length > 0) completed.openToolCalls = open;
  run.status = status;
  run.completed = completed;
}

/** Applies any event but a delta; the head's size is measured around it by the caller. */
function applyEvent(run: RunSnapshot, record: RunEventRecord, first: number): void {
  closeOpenPart(run);
  const data: DataRecord = isRecord(record.data) ? record.data : {};
  switch (record.event) {
    case 'agent_started':
      // The run's start (a second one, possible only without the grammar, changes nothing).
      if (run.parts.length === 0 && run.agent === '') {
        run.agent = typeof data.agent === 'string' ? data.agent : '';
        if (data.input !== undefined) run.input = data.input;
        run.startedSeq = first;
        run.startedAt = record.ts;
      }
      return;
    case 'tool_executing':
      addPart(run, {
        kind: 'tool',
        toolCallId: typeof data.toolCallId === 'string' ? data.toolCallId : '',
        tool: typeof data.tool === 'string' ? data.tool : '',
        args: data.args ?? null,
        status: 'running',
      });
      return;
    case 'tool_completed':
      completeTool(run, data);
      return;
    case 'agent_completed':
      complete(run, data);
      return;
  }
}

/** Cuts `needed` bytes (or all there is) from the start of a part's text. */
function cutText(run: RunSnapshot, part: { text: string }, needed: number): void {
  const text = part.text;
  let bytes = 0;
  let i = 0;
  while (i < text.length && bytes < needed) {
    const pair =
      text.charCodeAt(i) >= 0xd800 &&
      text.charCodeAt(i) <= 0xdbff &&
      isLowSurrogate(text.charCodeAt(i + 1));
    const step = pair ? 2 : 1;
    bytes += jsonStringBytes(text, i, i + step);
    i += step;
  }
  part.text = text.slice(i);
  run.sizeBytes! -= bytes;
}

function dropToolPayload(run: RunSnapshot, part: ToolPart): void {
  if (part.args === null && part.result === undefined && part.error === undefined) return;
  run.sizeBytes! -= partBytes(part);
  part.args = null;
  delete part.result;
  delete part.error;
  run.sizeBytes! += partBytes(part);
}

/** Brings a snapshot over its cap down to {@link CUT_TO_SHARE} of it (see the module comment). */
function truncate(run: RunSnapshot, maxBytes: number): void {
  if (!run.truncated) {
    run.truncated = true;
    run.sizeBytes! += TRUNCATED_FIELD_BYTES;
  }
  const target = Math.floor(maxBytes * CUT_TO_SHARE);
  const over = (): boolean => run.sizeBytes! > target;
  for (const kind of ['reasoning', 'text'] as const) {
    for (const part of run.parts) {
      if (!over()) return;
      if (part.kind === kind) cutText(run, part, run.sizeBytes! - target);
    }
  }
  for (const part of run.parts) {
    if (!over()) return;
    if (part.kind === 'tool') dropToolPayload(run, part);
  }
  let remove = 0;
  while (over() && remove < run.parts.length - 1) {
    run.sizeBytes! -= partBytes(run.parts[remove]!);
    remove++;
  }
  run.parts.splice(0, remove);
}

/**
 * Folds one event (or merged delta) of a run into its snapshot and returns
 * it: `snapshot` itself, updated in place, or a new one for the run's first
 * event. Events are folded in seq order, each once.
 *
 * @example
 * let run: RunSnapshot | undefined;
 * for (const e of events) run = foldRunEvent(run, e, { maxBytes: 1 << 20 });
 */
export function foldRunEvent(
  snapshot: RunSnapshot | undefined,
  record: RunEventRecord,
  options: RunSnapshotOptions = {},
): RunSnapshot {
  const maxBytes = checkedMaxBytes(options);
  const first = record.seqFrom ?? record.seq;
  const run = snapshot ?? newSnapshot(record, first);
  run.sizeBytes ??= measureRunSnapshot(run);
  const isDelta =
    (record.event === 'agent_thinking' || record.event === 'agent_text') && isRecord(record.data);
  // The head (everything but the parts) is measured around any change but the
  // common one, a delta that only moves `upToSeq`/`updatedAt` (SIZE_SLACK
  // covers their digits).
  const headChanges =
    !isDelta ||
    run.epoch !== record.epoch ||
    (run.threadId === undefined && record.threadId !== undefined);
  const headBefore = headChanges ? headBytes(run) : 0;
  if (isDelta) appendDelta(run, record.event, record.data as DataRecord, first);
  else applyEvent(run, record, first);
  if (run.threadId === undefined && record.threadId !== undefined) run.threadId = record.threadId;
  run.epoch = record.epoch;
  run.upToSeq = record.seq;
  run.updatedAt = record.ts;
  if (headChanges) run.sizeBytes += headBytes(run) - headBefore;
  if (run.sizeBytes > maxBytes) truncate(run, maxBytes);
  return run;
}

/**
 * Folds an `event` frame as a client receives it, merged or not. Frames
 * without a `runId` are not part of a run: the snapshot comes back unchanged.
 */
export function foldRunFrame(
  snapshot: RunSnapshot | undefined,
  frame: EventFrame,
  epoch: string,
  options: RunSnapshotOptions = {},
): RunSnapshot | undefined {
  if (frame.runId === undefined) return snapshot;
  const record: RunEventRecord = {
    seq: frame.seq,
    epoch,
    event: frame.event,
    data: frame.data,
    ts: frame.ts,
    runId: frame.runId,
  };
  if (frame.seqFrom !== undefined) record.seqFrom = frame.seqFrom;
  if (frame.threadId !== undefined) record.threadId = frame.threadId;
  return foldRunEvent(snapshot, record, options);
}

/**
 * Applies a merged delta (`seqFrom`..`seq`, see `encodeMergedDeltaFrame`):
 * the same snapshot as folding each of its deltas in turn.
 */
export function applyMergedDelta(
  snapshot: RunSnapshot | undefined,
  delta: MergedDelta,
  epoch: string,
  options: RunSnapshotOptions = {},
): RunSnapshot {
  const data: DataRecord = { text: delta.text };
  if (delta.messageId !== undefined) data.messageId = delta.messageId;
  const record: RunEventRecord = {
    seq: delta.seq,
    seqFrom: delta.seqFrom,
    epoch,
    event: delta.event,
    data,
    ts: delta.ts,
    runId: delta.runId,
  };
  if (delta.threadId !== undefined) record.threadId = delta.threadId;
  return foldRunEvent(snapshot, record, options);
}
