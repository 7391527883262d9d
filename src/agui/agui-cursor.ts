/**
 * Positions in an AG-UI stream of one run, and their string form (the SSE
 * `id:` line, `metadata.agentsocket.cursor`, the `Last-Event-ID` header).
 *
 * One agentsocket event can map to several AG-UI events (a first thinking
 * delta is `REASONING_START`, `REASONING_MESSAGE_START` and
 * `REASONING_MESSAGE_CONTENT`). The LAST AG-UI event of that group carries
 * `<epoch>:<seq>`: "everything of seq has been received". Each earlier one
 * carries `<epoch>:<seq>.<index>` (index from 0): "events 0..index of seq's
 * group have been received". Ordered by (seq, index) with the whole event
 * after all of its parts, the cursors of one stream strictly increase, and a
 * cursor names exactly what the client holds, so a resume neither repeats nor
 * skips an AG-UI event, even when the stream was cut inside a group.
 *
 * Pure: no I/O, no Node imports.
 */
import type { Validated } from '../protocol/event-input.js';

/** What a client holds of one run's AG-UI stream. */
export interface AguiPosition {
  /** The user stream's epoch: a cursor of another epoch is stale. */
  epoch: string;
  /** The agentsocket seq of the last (whole or partly) received event. */
  seq: number;
  /** `null`: all of seq's AG-UI events were received; n: only events 0..n of its group. */
  index: number | null;
}

/** Longest epoch a cursor may carry (epochs are short generated tokens). */
export const MAX_CURSOR_EPOCH_LENGTH = 128;
/** Largest group index a cursor may carry; a group is a handful of events. */
export const MAX_CURSOR_INDEX = 999;

const EPOCH_PATTERN = /^[A-Za-z0-9._-]+$/;
const SEQ_PATTERN = /^(0|[1-9][0-9]{0,15})(?:\.(0|[1-9][0-9]{0,2}))?$/;

/** `<epoch>:<seq>` or `<epoch>:<seq>.<index>`. */
export function formatAguiCursor(position: AguiPosition): string {
  const base = `${position.epoch}:${position.seq}`;
  return position.index === null ? base : `${base}.${position.index}`;
}

/**
 * Reads a cursor. Fails, naming `field`, on anything that is not exactly what
 * {@link formatAguiCursor} writes: no whitespace, no sign, no leading zeros.
 */
export function parseAguiCursor(text: string, field = 'cursor'): Validated<AguiPosition> {
  const colon = text.lastIndexOf(':');
  if (colon <= 0) {
    return fail(field, `${field} must be "<epoch>:<seq>" or "<epoch>:<seq>.<index>"`);
  }
  const epoch = text.slice(0, colon);
  if (epoch.length > MAX_CURSOR_EPOCH_LENGTH || !EPOCH_PATTERN.test(epoch)) {
    return fail(
      field,
      `${field}: the epoch must be 1-${MAX_CURSOR_EPOCH_LENGTH} characters of [A-Za-z0-9._-]`,
    );
  }
  const match = SEQ_PATTERN.exec(text.slice(colon + 1));
  if (match === null) {
    return fail(
      field,
      `${field}: after the epoch comes a seq (a non-negative integer without leading zeros), optionally ".<index>" (0-${MAX_CURSOR_INDEX})`,
    );
  }
  const seq = Number(match[1]);
  if (!Number.isSafeInteger(seq)) return fail(field, `${field}: the seq is too large`);
  const index = match[2] === undefined ? null : Number(match[2]);
  return { ok: true, value: { epoch, seq, index } };
}

/**
 * Orders two positions of one epoch: negative when `a` is before `b`. A whole
 * event (index `null`) comes after every part of it.
 */
export function compareAguiPositions(a: AguiPosition, b: AguiPosition): number {
  if (a.seq !== b.seq) return a.seq - b.seq;
  return (a.index ?? Number.POSITIVE_INFINITY) - (b.index ?? Number.POSITIVE_INFINITY) || 0;
}

function fail(field: string, message: string): Validated<never> {
  return { ok: false, failure: { field, message } };
}
