/**
 * Server-Sent Events framing for AG-UI streams, LF only: the stock AG-UI
 * client splits events on "\n\n" and reads only `data:` lines, so a CR
 * anywhere would break it. JSON.stringify escapes every line break inside a
 * string, so one event is always one `data:` line.
 */
import type { Validated } from '../protocol/event-input.js';
import { parseAguiCursor, type AguiPosition } from './agui-cursor.js';
import type { AguiOutput } from './agui-types.js';

/** The request header a resuming client sets to the last cursor it holds. */
export const LAST_EVENT_ID_HEADER = 'last-event-id';

/** A comment line that keeps idle proxies from closing the stream; clients ignore it. */
export const SSE_KEEP_ALIVE = ': keep-alive\n\n';

/** `id: <cursor>\ndata: <json>\n\n`, without the `id:` line when the cursor is null. */
export function encodeSseEvent(output: AguiOutput): string {
  const data = `data: ${JSON.stringify(output.event)}\n\n`;
  return output.cursor === null ? data : `id: ${output.cursor}\n${data}`;
}

/** A comment line (`: <text>\n\n`). The text may not hold a line break. */
export function encodeSseComment(text: string): string {
  if (/[\r\n]/.test(text)) throw new RangeError('an SSE comment cannot hold a line break');
  return `: ${text}\n\n`;
}

/**
 * The position a `Last-Event-ID` header names: `null` when the header is
 * absent or empty (no cursor: snapshot mode), a failure naming the header
 * when it is malformed or repeated (answer 400).
 */
export function parseLastEventId(
  header: string | readonly string[] | undefined,
): Validated<AguiPosition | null> {
  if (header === undefined) return { ok: true, value: null };
  if (typeof header !== 'string') {
    return {
      ok: false,
      failure: { field: 'Last-Event-ID', message: 'Last-Event-ID may be sent only once' },
    };
  }
  const value = header.trim();
  if (value === '') return { ok: true, value: null };
  return parseAguiCursor(value, 'Last-Event-ID');
}
