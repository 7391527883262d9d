/**
 * Writing JSON answers and JSON error bodies (`{"error":{"code","message","field?"}}`,
 * PROTOCOL.md section 5). Every error of the HTTP API goes through `sendError`,
 * so the body shape, the status of each code and `Retry-After` stay in one place.
 */
import type { ServerResponse } from 'node:http';
import type { GatewayError } from '../errors.js';

/** Writes `body` as JSON with `status`. Does nothing if the answer has already started. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.writableEnded) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(text)),
    'Cache-Control': 'no-store',
  });
  res.end(text);
}

/** Writes a `GatewayError` as its status and JSON body; `Retry-After` when the error has one. */
export function sendError(
  res: ServerResponse,
  error: GatewayError,
  headers: Record<string, string> = {},
): void {
  const extra: Record<string, string> = { ...headers };
  if (error.retryAfter !== undefined) extra['Retry-After'] = String(error.retryAfter);
  sendJson(res, error.status, error.toBody(), extra);
}
