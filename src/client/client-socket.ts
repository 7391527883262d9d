/**
 * One socket of the client, from its URL to its last callback: the URL of an
 * attempt (with the cursor), the socket itself (token in the subprotocol or a
 * header), the callbacks wired to the client while it is the current socket,
 * and the detaching when the client leaves it.
 */
import { BEARER_SUBPROTOCOL_PREFIX, SUBPROTOCOL } from '../protocol/frames.js';
import { parseSocketUrl } from './client-options.js';
import type { AuthMode, UrlSource } from './client-types.js';
import type { StreamCursor } from './seq-tracker.js';
import type { WebSocketConstructorLike, WebSocketLike } from './websocket-like.js';

function noop(): void {}

/**
 * The URL of the next attempt, with the cursor and `snapshots=1` (asking for
 * `run_snapshot` frames, protocol 1.1) when `snapshots`; throws a TypeError
 * when `source` gives a bad one.
 */
export function socketUrl(
  source: UrlSource,
  cursor: StreamCursor | null,
  snapshots = false,
): string {
  const url = parseSocketUrl(typeof source === 'string' ? source : source());
  url.searchParams.delete('lastSeq');
  url.searchParams.delete('epoch');
  url.searchParams.delete('snapshots');
  if (snapshots) url.searchParams.set('snapshots', '1');
  if (cursor) {
    url.searchParams.set('lastSeq', String(cursor.lastSeq));
    url.searchParams.set('epoch', cursor.epoch);
  }
  return url.toString();
}

/** A new socket carrying `token` as `auth` says. */
export function createSocket(
  Ctor: WebSocketConstructorLike,
  url: string,
  auth: AuthMode,
  token: string,
): WebSocketLike {
  return auth === 'header'
    ? new Ctor(url, [], { headers: { Authorization: `Bearer ${token}` } })
    : new Ctor(url, [SUBPROTOCOL, `${BEARER_SUBPROTOCOL_PREFIX}${token}`]);
}

/** What the client hears from its current socket. */
export interface SocketHandlers {
  message(data: unknown): void;
  error(message: string): void;
  close(code: number, reason: string): void;
}

/** Wires `socket` to `handlers`; every callback is dropped once `isCurrent()` is false. */
export function listen(
  socket: WebSocketLike,
  isCurrent: () => boolean,
  handlers: SocketHandlers,
): void {
  socket.onopen = noop;
  socket.onmessage = (event) => {
    if (isCurrent()) handlers.message(event.data);
  };
  socket.onerror = (event) => {
    if (!isCurrent()) return;
    const message = (event as { message?: unknown } | null)?.message;
    handlers.error(typeof message === 'string' ? message : 'WebSocket error');
  };
  socket.onclose = (event) => {
    if (isCurrent()) handlers.close(event.code, event.reason);
  };
}

/**
 * Leaves `socket`: detaches its callbacks (no-ops, not null: `ws` throws on
 * an `error` event without a listener) and closes it when `closeCode` is given.
 */
export function detach(socket: WebSocketLike, closeCode: number | null, reason: string): void {
  socket.onopen = noop;
  socket.onmessage = noop;
  socket.onerror = noop;
  socket.onclose = noop;
  if (closeCode === null) return;
  try {
    socket.close(closeCode, reason);
  } catch {
    // Already closing or never opened: nothing left to close.
  }
}
