/**
 * Decoding at the edge: text in, a typed frame or a reason out. Inside the
 * gateway and the SDK nothing re-checks a decoded frame.
 */
import type { ClientFrame, ServerFrame } from './frames.js';

export type Decoded<T> = { ok: true; frame: T } | { ok: false; message: string };

/** Longest token accepted in a `refresh` frame; a JWT this long is an attack. */
export const MAX_TOKEN_LENGTH = 8192;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isSeq(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function parseObject(text: string): Record<string, unknown> | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return 'frame is not valid JSON';
  }
  if (!isRecord(parsed)) return 'frame must be a JSON object';
  return parsed;
}

/** Decodes one client → server text frame. */
export function decodeClientFrame(text: string): Decoded<ClientFrame> {
  const obj = parseObject(text);
  if (typeof obj === 'string') return { ok: false, message: obj };
  switch (obj.type) {
    case 'ack':
      return isSeq(obj.seq)
        ? { ok: true, frame: { type: 'ack', seq: obj.seq } }
        : { ok: false, message: 'ack.seq must be a non-negative integer' };
    case 'ping':
      return { ok: true, frame: { type: 'ping' } };
    case 'pong':
      return { ok: true, frame: { type: 'pong' } };
    case 'refresh':
      return typeof obj.token === 'string' &&
        obj.token.length > 0 &&
        obj.token.length <= MAX_TOKEN_LENGTH
        ? { ok: true, frame: { type: 'refresh', token: obj.token } }
        : { ok: false, message: 'refresh.token must be a non-empty string' };
    default:
      return {
        ok: false,
        message:
          typeof obj.type === 'string'
            ? `unknown frame type "${obj.type.slice(0, 32)}"`
            : 'frame.type must be a string',
      };
  }
}

const SERVER_TYPES = new Set([
  'welcome',
  'event',
  'run_snapshot',
  'broadcast',
  'ping',
  'pong',
  'refreshed',
  'error',
]);

/**
 * Decodes one server → client text frame (the SDK's edge). It checks the shape
 * the SDK relies on (`type`, and `seq` of events) and trusts the server for the
 * rest.
 */
export function decodeServerFrame(text: string): Decoded<ServerFrame> {
  const obj = parseObject(text);
  if (typeof obj === 'string') return { ok: false, message: obj };
  if (typeof obj.type !== 'string' || !SERVER_TYPES.has(obj.type)) {
    return { ok: false, message: 'unknown server frame type' };
  }
  if (obj.type === 'event' && !isSeq(obj.seq)) {
    return { ok: false, message: 'event.seq must be a non-negative integer' };
  }
  if (
    obj.type === 'event' &&
    obj.seqFrom !== undefined &&
    !(isSeq(obj.seqFrom) && obj.seqFrom <= (obj.seq as number))
  ) {
    return { ok: false, message: 'event.seqFrom must be a non-negative integer not above seq' };
  }
  if (
    obj.type === 'run_snapshot' &&
    !(
      typeof obj.runId === 'string' &&
      isSeq(obj.upToSeq) &&
      typeof obj.epoch === 'string' &&
      isRecord(obj.run) &&
      Array.isArray(obj.run.parts)
    )
  ) {
    return { ok: false, message: 'run_snapshot needs runId, upToSeq, epoch and run' };
  }
  return { ok: true, frame: obj as unknown as ServerFrame };
}

export function encodeFrame(frame: ServerFrame | ClientFrame): string {
  return JSON.stringify(frame);
}
