/**
 * A client that reads slowly, and a path to the gateway where reading slowly
 * shows: a Unix socket.
 *
 * Why not loopback TCP: Linux lets a loopback connection's kernel buffers
 * grow to about 4 MiB (tcp_wmem's maximum on the sender, plus the receiver's
 * window), so a flood of a few MiB vanishes into the kernel and the gateway
 * never sees the reader fall behind. A Unix stream socket holds a few tens of
 * KiB, about what a real network path holds for a slow mobile reader, so the
 * gateway's own buffer fills as it would in the field. Both are real sockets:
 * the gateway runs the same code on either.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Harness } from './gateway-harness.js';
import type { TestClient } from './test-client.js';

export interface UnixEndpoint {
  /** `ws+unix://<path>:/v1/ws`, for `TestClient.connect`. */
  wsUrl: string;
  close(): Promise<void>;
}

/** The harness's gateway, also attached to an HTTP server on a private Unix socket. */
export async function listenOnUnixSocket(h: Harness): Promise<UnixEndpoint> {
  const dir = mkdtempSync(join(tmpdir(), 'agentsocket-'));
  const path = join(dir, 'gateway.sock');
  const server: Server = createServer((_req, res) => {
    res.statusCode = 404;
    res.end();
  });
  h.gateway.attach(server);
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    wsUrl: `ws+unix://${path}:/v1/ws`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * `_socket` is ws's own underlying socket; there is no public handle to it,
 * hence the cast (as in slow-consumer.test.ts).
 */
function socketOf(client: TestClient): Socket {
  return (client.ws as unknown as { _socket: Socket })._socket;
}

/**
 * Paces the client's reading to about `bytesPerSecond`: its socket is paused
 * whenever it has read its budget, and the budget grows on the reader's own
 * clock (the one timer here is the reader's pacing, not a wait of the test).
 * Returns a function that stops pacing and lets the client read at full speed.
 */
export function readSlowly(client: TestClient, bytesPerSecond: number): () => void {
  const socket = socketOf(client);
  const tickMs = 50;
  let budget = 0;
  let read = 0;
  socket.on('data', (chunk: Buffer) => {
    read += chunk.length;
    if (read >= budget) socket.pause();
  });
  const ticker = setInterval(() => {
    budget += (bytesPerSecond * tickMs) / 1000;
    if (read < budget) socket.resume();
  }, tickMs);
  ticker.unref();
  socket.pause();
  return () => {
    clearInterval(ticker);
    socket.resume();
  };
}
