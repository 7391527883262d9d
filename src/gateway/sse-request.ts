/**
 * Reads what a `GET /v1/sse` request asks for: the WebSocket handshake's
 * query, with the same strictness (`handshake-request.ts`), plus the resume
 * cursor as `Last-Event-ID: <epoch>:<seq>` (what an SSE reader gives back),
 * exactly equivalent to `lastSeq` + `epoch`. The credential is a ticket only.
 * Pure: no I/O, no clock.
 */
import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.js';
import { parseEventId } from '../protocol/sse.js';
import { parseHandshakeRequest, type HandshakeRequest } from './handshake-request.js';

export function parseSseRequest(req: IncomingMessage): HandshakeRequest | GatewayError {
  const parsed = parseHandshakeRequest(req);
  if (parsed instanceof GatewayError) return parsed;
  if (parsed.credential?.kind === 'token') {
    return new GatewayError(
      'bad_request',
      'GET /v1/sse takes a ticket (POST /v1/tickets) in ?ticket=, not a token',
      'Authorization',
    );
  }
  const raw = req.headers['last-event-id'];
  if (Array.isArray(raw)) {
    return new GatewayError('bad_request', 'Last-Event-ID may be sent only once', 'Last-Event-ID');
  }
  const header = raw?.trim() ?? '';
  if (header === '') return parsed;
  if (parsed.cursor.kind === 'position') {
    return new GatewayError(
      'bad_request',
      'give the cursor once: Last-Event-ID, or lastSeq and epoch',
      'Last-Event-ID',
    );
  }
  const position = parseEventId(header);
  if (position === null) {
    return new GatewayError(
      'bad_request',
      'Last-Event-ID must be "<epoch>:<seq>"',
      'Last-Event-ID',
    );
  }
  return { ...parsed, cursor: { kind: 'position', ...position } };
}
