/**
 * Cuts off slow senders before the gateway ever sees their request
 * (PROTOCOL.md section 2: "The handshake must complete within 10 s of the
 * first byte").
 *
 * The gateway's own deadline (`limits.handshakeTimeoutMs`, in `handleUpgrade`)
 * starts when Node has parsed the request headers: it bounds slow
 * authentication and a slow upgrade, but not a client that drips its headers
 * one byte at a time, or opens a socket and says nothing. Node's HTTP server
 * bounds those with `headersTimeout`, but only checks it every
 * `connectionsCheckingInterval` (default 30 s), so by default a slow sender
 * holds a socket for up to 30 s past any timeout. These settings make Node
 * answer 408 and close within `handshakeTimeoutMs` plus one short check
 * interval.
 */
import type { Server } from 'node:http';

/** Options for `http.createServer` that bound the time to a complete request head. */
export interface HandshakeServerOptions {
  headersTimeout: number;
  requestTimeout: number;
  connectionsCheckingInterval: number;
}

/**
 * The `http.createServer` options that enforce `handshakeTimeoutMs` on slow
 * senders. `requestTimeout` (the whole request, body included, for the HTTP
 * API) is never set below `headersTimeout`; pass `requestTimeoutMs` to keep
 * a longer one (default 30 s).
 *
 * @example
 * const server = createServer(handshakeServerOptions(10_000), app);
 * gateway.attach(server);
 */
export function handshakeServerOptions(
  handshakeTimeoutMs: number,
  requestTimeoutMs = 30_000,
): HandshakeServerOptions {
  if (!Number.isSafeInteger(handshakeTimeoutMs) || handshakeTimeoutMs <= 0) {
    throw new TypeError(
      `handshakeTimeoutMs must be a positive integer, got ${String(handshakeTimeoutMs)}`,
    );
  }
  return {
    headersTimeout: handshakeTimeoutMs,
    requestTimeout: Math.max(handshakeTimeoutMs, requestTimeoutMs),
    // A fifth of the timeout, within [50 ms, 1 s]: each check walks every
    // connection, so not too often; but a slow sender is cut near its deadline.
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(handshakeTimeoutMs / 5))),
  };
}

/**
 * Applies `handshakeServerOptions` to a server created elsewhere. Node reads
 * `connectionsCheckingInterval` when the server starts listening, so this must
 * be called before `listen`; it throws otherwise.
 *
 * @example
 * const server = createServer(app);
 * hardenServer(server, gateway.options.limits.handshakeTimeoutMs);
 * gateway.attach(server);
 * server.listen(8080);
 */
export function hardenServer(
  server: Server,
  handshakeTimeoutMs: number,
  requestTimeoutMs = 30_000,
): void {
  if (server.listening) {
    throw new Error('hardenServer must be called before the server listens');
  }
  const options = handshakeServerOptions(handshakeTimeoutMs, requestTimeoutMs);
  server.headersTimeout = options.headersTimeout;
  server.requestTimeout = options.requestTimeout;
  // Typed in @types/node only as a createServer option; Node reads the property at listen.
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval =
    options.connectionsCheckingInterval;
}
