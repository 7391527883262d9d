/**
 * Refusals before the upgrade: plain HTTP on the raw socket with the JSON
 * error body of the protocol. Nothing from the request (token, ticket) is
 * echoed back.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { GatewayError } from '../errors.js';

export function refuseHandshake(socket: Duplex, error: GatewayError): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(error.toBody());
  const lines = [
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}`,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    'Cache-Control: no-store',
  ];
  if (error.retryAfter !== undefined) lines.push(`Retry-After: ${error.retryAfter}`);
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
  // `end` flushes the answer; destroy soon after so a peer that never reads
  // cannot hold the socket open.
  setTimeout(() => socket.destroy(), 1000).unref();
}
