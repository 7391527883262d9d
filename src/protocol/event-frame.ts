/**
 * The `event` frame (PROTOCOL.md section 3), built here and nowhere else.
 *
 * A publish is encoded in two steps, so the data is serialized once and the
 * frame built once per event:
 * 1. `encodeEvent` (the publisher, before the engine): everything the
 *    publisher knows, as an opaque `payload` the engine stores and carries.
 * 2. `encodeEventFrame` (the node that writes it): the engine's position
 *    (`seq`), id and time stamp in front of the payload.
 *
 * No JSON.stringify for the strings: validation restricts the event name,
 * ids, run ids and thread ids to characters that need no escaping in JSON
 * (EVENT_NAME_PATTERN, REF_PATTERN; generated ids are alphanumeric), so
 * quoting them is enough. `data` arrives serialized (`ValidEvent.dataJson`).
 */
import { runGrammarArg } from '../runs/run-grammar.js';
import type { ValidEvent } from './event-input.js';

/** Where an event sits: its stream (`epoch`) and its place in it (`seq`). */
export interface StreamPosition {
  readonly epoch: string;
  readonly seq: number;
}

/** A validated event as a stream engine receives it: the frame's tail is `payload`, opaque to the engine. */
export interface EncodedEvent {
  /** The publisher's idempotency id; the engine generates one when absent. */
  readonly id?: string;
  readonly event: string;
  readonly critical: boolean;
  /** The frame after `"ts":<ts>,`, ending with `}`. */
  readonly payload: string;
  /**
   * `payload` in its parts, set by `encodeEvent`: `payload` is exactly
   * `payloadHead + dataJson + "}"`, and `payloadHead` is ASCII. An engine
   * that frames the event can write the parts without joining them (no copy
   * of a large `data`).
   */
  readonly payloadHead?: string;
  readonly dataJson?: string;
  /** Set for an event of a run (it has a `runId`): what the engine checks and folds. */
  readonly run?: EncodedRunEvent;
}

/**
 * What an engine needs of an event of a run, beside the opaque payload: the
 * run grammar's one argument and the data to fold into the run's snapshot.
 */
export interface EncodedRunEvent {
  readonly runId: string;
  readonly threadId?: string;
  /** `runGrammarArg(event, data)`: the only value of `data` the grammar looks at. */
  readonly grammarArg: string;
  /** The event's `data` as JSON (the same text as in `payload`), for the snapshot fold. */
  readonly dataJson: string;
}

/** What `encodeEventFrame` needs of a stored event. */
export interface FramedEvent {
  readonly seq: number;
  readonly id: string;
  readonly ts: number;
  readonly payload: string;
}

/**
 * The last payload head made and what it was made of. A publisher sends runs
 * of the same event name (a token stream, one run's deltas): they share one
 * head, built once and flat, instead of a new string of four parts per
 * publish that each frame write then flattened again (docs/performance.md,
 * "Seventh pass"). One entry: nothing to bound.
 */
const lastHead = {
  event: '',
  runId: undefined as string | undefined,
  threadId: undefined as string | undefined,
  critical: false,
  text: '',
};

/** `"event":"<name>"`, the run and thread ids when set, `critical`, then `"data":`. */
function payloadHeadOf(event: ValidEvent): string {
  const { runId, threadId, critical } = event;
  const last = lastHead;
  if (
    last.text !== '' &&
    last.event === event.event &&
    last.runId === runId &&
    last.threadId === threadId &&
    last.critical === critical
  ) {
    return last.text;
  }
  let text = `"event":"${event.event}"`;
  if (runId !== undefined) text += `,"runId":"${runId}"`;
  if (threadId !== undefined) text += `,"threadId":"${threadId}"`;
  text += `,"critical":${critical},"data":`;
  last.event = event.event;
  last.runId = runId;
  last.threadId = threadId;
  last.critical = critical;
  // A joined string is a tree of its parts until the first write flattens it,
  // in place: kept here, later writes find it flat.
  last.text = text;
  return text;
}

/** Step 1: the publisher's part of the frame, once per publish. */
export function encodeEvent(event: ValidEvent): EncodedEvent {
  const payloadHead = payloadHeadOf(event);
  const { dataJson } = event;
  const encoded: { -readonly [K in keyof EncodedEvent]: EncodedEvent[K] } = {
    event: event.event,
    critical: event.critical,
    payload: `${payloadHead}${dataJson}}`,
    payloadHead,
    dataJson,
  };
  if (event.id !== undefined) encoded.id = event.id;
  if (event.runId !== undefined) encoded.run = encodeRunEvent(event, event.runId);
  return encoded;
}

function encodeRunEvent(event: ValidEvent, runId: string): EncodedRunEvent {
  const grammarArg = runGrammarArg(event.event, event.data);
  return event.threadId === undefined
    ? { runId, grammarArg, dataJson: event.dataJson }
    : { runId, threadId: event.threadId, grammarArg, dataJson: event.dataJson };
}

/** Step 2: the complete frame text, once per event and node. */
export function encodeEventFrame(event: FramedEvent): string {
  return `${encodeEventFramePrefix(event.seq, event.id, event.ts)}${event.payload}`;
}

/**
 * The frame's text before the payload, in its parts around seq, id and ts.
 * The Redis engine's read script builds the same text from them
 * (`broker/redis/scripts.ts`).
 */
export const EVENT_FRAME_PREFIX_PARTS = [
  '{"type":"event","seq":',
  ',"id":"',
  '","ts":',
  ',',
] as const;
const [BEFORE_SEQ, BEFORE_ID, BEFORE_TS, BEFORE_PAYLOAD] = EVENT_FRAME_PREFIX_PARTS;

/** The frame's text before the payload: ASCII (ids are validated or generated). */
export function encodeEventFramePrefix(seq: number, id: string, ts: number): string {
  return `${BEFORE_SEQ}${seq}${BEFORE_ID}${id}${BEFORE_TS}${ts}${BEFORE_PAYLOAD}`;
}
