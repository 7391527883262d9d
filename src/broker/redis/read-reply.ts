/**
 * Decoding a history read of the Redis engine (`READ_SCRIPT`'s reply, bulk
 * values as Buffers): the events come as their whole WebSocket frames, one
 * after the other in one value, built by the script, and are written as they
 * are. Seq, ts and where the payload starts are read from each frame's
 * prefix (`encodeEventFramePrefix`), `critical` from one character per event
 * and `awaitedBy` from a list of the events that have one. Everything is
 * checked, never trusted: a malformed reply rejects the read.
 */
import { textFrameEnd } from '../../gateway/wire-frame.js';
import { EVENT_FRAME_PREFIX_PARTS } from '../../protocol/event-frame.js';
import { StoredEvent } from '../stored-event.js';
import type { HistoryRead } from '../stream-engine.js';

const [BEFORE_SEQ, BEFORE_ID, BEFORE_TS, BEFORE_PAYLOAD] = EVENT_FRAME_PREFIX_PARTS.map((part) =>
  Buffer.from(part, 'latin1'),
) as [Buffer, Buffer, Buffer, Buffer];
const QUOTE = 0x22;
const ZERO = 0x30;
const ONE = 0x31;

function malformed(): Error {
  return new Error('RedisBroker: malformed history event');
}

/** True when `bytes` holds `part` at `at`. */
function holds(bytes: Buffer, at: number, part: Buffer): boolean {
  if (at + part.length > bytes.length) return false;
  for (let i = 0; i < part.length; i++) if (bytes[at + i] !== part[i]) return false;
  return true;
}

/** The frames' own buffer: a reply's value may be a view of the socket's read buffer. */
function ownBuffer(frames: Buffer): Buffer {
  // A value that spanned socket reads was joined into a buffer of its own
  // by the parser; one inside a read is a view of that read's 64 KiB, which
  // a few frames kept by a slow socket would keep alive whole, beyond what
  // its byte limits count.
  if (frames.byteOffset === 0 && frames.buffer.byteLength === frames.length) return frames;
  const copy = Buffer.allocUnsafe(frames.length);
  frames.copy(copy, 0);
  return copy;
}

/** `awaited` (flat: place from 1, node id) by place from 0; undefined when empty. */
function awaitedByPlace(awaited: unknown[], count: number): (string | undefined)[] | undefined {
  if (awaited.length === 0) return undefined;
  if (awaited.length % 2 !== 0) throw malformed();
  const byPlace = new Array<string | undefined>(count);
  for (let i = 0; i < awaited.length; i += 2) {
    const place: unknown = awaited[i];
    const by: unknown = awaited[i + 1];
    if (
      typeof place !== 'number' ||
      !Number.isInteger(place) ||
      place < 1 ||
      place > count ||
      !Buffer.isBuffer(by) ||
      by.length === 0
    ) {
      throw malformed();
    }
    // Node ids are ASCII (NODE_ID_PATTERN).
    byPlace[place - 1] = by.toString('latin1');
  }
  return byPlace;
}

/**
 * The events of a read: `frames` (every frame, one after the other),
 * `critical` (`1`/`0` per event) and `awaited` (flat: place from 1, node id).
 */
export function decodeEvents(frames: unknown, critical: unknown, awaited: unknown): StoredEvent[] {
  if (!Buffer.isBuffer(frames) || !Buffer.isBuffer(critical) || !Array.isArray(awaited)) {
    throw new Error('RedisBroker: malformed history events');
  }
  const awaitedBy = awaitedByPlace(awaited, critical.length);
  const bytes = ownBuffer(frames);
  const events: StoredEvent[] = [];
  let at = 0;
  while (at < bytes.length) {
    const end = textFrameEnd(bytes, at);
    if (end < 0) throw malformed();
    // The text starts after the header: 2, 4 or 10 bytes.
    const length = bytes[at + 1]!;
    let cursor = at + (length < 126 ? 2 : length === 126 ? 4 : 10);
    if (!holds(bytes, cursor, BEFORE_SEQ)) throw malformed();
    cursor += BEFORE_SEQ.length;
    let seq = 0;
    const seqAt = cursor;
    for (let byte = bytes[cursor]!; byte >= ZERO && byte <= ZERO + 9; byte = bytes[++cursor]!) {
      seq = seq * 10 + byte - ZERO;
    }
    if (cursor === seqAt || !holds(bytes, cursor, BEFORE_ID)) throw malformed();
    // The id is ASCII without quotes (validated or generated), read from the frame when asked for.
    cursor = bytes.indexOf(QUOTE, cursor + BEFORE_ID.length);
    if (cursor < 0 || !holds(bytes, cursor, BEFORE_TS)) throw malformed();
    cursor += BEFORE_TS.length;
    let ts = 0;
    const tsAt = cursor;
    for (let byte = bytes[cursor]!; byte >= ZERO && byte <= ZERO + 9; byte = bytes[++cursor]!) {
      ts = ts * 10 + byte - ZERO;
    }
    if (cursor === tsAt || !holds(bytes, cursor, BEFORE_PAYLOAD)) throw malformed();
    const payloadAt = cursor + BEFORE_PAYLOAD.length - at;
    const flag = critical[events.length];
    if (
      !Number.isSafeInteger(seq) ||
      !Number.isSafeInteger(ts) ||
      at + payloadAt > end ||
      (flag !== ZERO && flag !== ONE)
    ) {
      throw malformed();
    }
    const by = awaitedBy?.[events.length];
    events.push(
      new StoredEvent(seq, ts, flag === ONE, bytes.subarray(at, end), payloadAt, undefined, by),
    );
    at = end;
  }
  if (critical.length !== events.length) throw malformed();
  return events;
}

/** A history read's reply: `{epoch, headSeq, ackedSeq, from, gap, frames, critical, awaited}`. */
export function decodeHistoryRead(result: unknown): HistoryRead {
  if (
    !Array.isArray(result) ||
    !Buffer.isBuffer(result[0]) ||
    typeof result[1] !== 'number' ||
    typeof result[2] !== 'number' ||
    typeof result[3] !== 'number'
  ) {
    throw new Error('RedisBroker: malformed history reply');
  }
  return {
    // Epochs are ASCII (`IdSource`).
    epoch: result[0].toString('latin1'),
    headSeq: result[1],
    ackedSeq: result[2],
    from: result[3],
    gap: result[4] === 1,
    events: decodeEvents(result[5], result[6], result[7]),
  };
}
