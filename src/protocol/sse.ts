/**
 * The Server-Sent Events transport of the protocol (`GET /v1/sse`,
 * docs/protocol.md "Server-Sent Events transport"), shared by the server and
 * the client SDK: the frames the WebSocket carries, each as one `data:` line,
 * LF framing only. Pure: no I/O, no Node imports.
 */

/** The last frame of a stream the gateway ends: SSE has no close codes, so it says them. */
export interface SseCloseFrame {
  type: 'close';
  /** A code of the close-code table (`close-codes.ts`). */
  code: number;
  reason: string;
}

/** `POST /v1/sse/ack`: the connection's cumulative ack, authorized by its welcome's `ackKey`. */
export interface SseAckRequest {
  connectionId: string;
  ackKey: string;
  seq: number;
}

/** The keep-alive comment written every heartbeat interval, in place of a `ping` frame. */
export const SSE_KEEP_ALIVE_COMMENT = ': keep-alive\n\n';

const EPOCH_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const SEQ_PATTERN = /^[0-9]{1,16}$/;

/** The `id:` of an event frame: `<epoch>:<seq>`, what `Last-Event-ID` gives back. */
export function formatEventId(epoch: string, seq: number): string {
  return `${epoch}:${seq}`;
}

/** Reads `<epoch>:<seq>`; null when it is anything else. */
export function parseEventId(text: string): { epoch: string; seq: number } | null {
  const colon = text.lastIndexOf(':');
  if (colon <= 0) return null;
  const epoch = text.slice(0, colon);
  const seq = text.slice(colon + 1);
  if (!EPOCH_PATTERN.test(epoch) || !SEQ_PATTERN.test(seq)) return null;
  const value = Number(seq);
  return Number.isSafeInteger(value) ? { epoch, seq: value } : null;
}

/** `[id: <id>\n]data: <text>\n\n`; `text` is one JSON text (no raw line break). */
export function encodeSseFrame(text: string, id?: string): string {
  const data = `data: ${text}\n\n`;
  return id === undefined ? data : `id: ${id}\n${data}`;
}
