/**
 * The practical floor: a bare `ws` server doing the minimum a per-user push
 * needs. A map user → sockets; publish = `JSON.stringify({event, data})` once,
 * `send` to each socket of the user. No seq, no history, no acks, no limits.
 */
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';
import { hostServer, listenLoopback } from './server-host.mjs';
import { bearerToken, createTokenVerifier } from './token-verifier.mjs';

function createBareWsAdapter({ authMode, secret }) {
  const verify = createTokenVerifier(authMode, secret);
  const httpServer = createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const sockets = new Map();

  httpServer.on('upgrade', (req, socket, head) => {
    verify(bearerToken(req.headers.authorization)).then(
      (userId) =>
        wss.handleUpgrade(req, socket, head, (ws) => {
          let set = sockets.get(userId);
          if (!set) sockets.set(userId, (set = new Set()));
          set.add(ws);
          ws.on('close', () => {
            set.delete(ws);
            if (set.size === 0 && sockets.get(userId) === set) sockets.delete(userId);
          });
        }),
      () => socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n'),
    );
  });

  return {
    listen: () => listenLoopback(httpServer),
    publish(userId, data) {
      const set = sockets.get(userId);
      if (!set) return;
      const message = JSON.stringify({ event: 'token', data });
      for (const ws of set) ws.send(message);
    },
    publishEvent(userId, event, runId, data) {
      const set = sockets.get(userId);
      if (!set) return;
      const message = JSON.stringify({ event, runId, data });
      for (const ws of set) ws.send(message);
    },
    broadcast(data) {
      const message = JSON.stringify({ event: 'bench', data });
      for (const ws of wss.clients) ws.send(message);
    },
    connectionCount: () => wss.clients.size,
    close: () => new Promise((resolve) => httpServer.close(() => resolve())),
  };
}

await hostServer(
  createBareWsAdapter({
    authMode: process.env.BENCH_AUTH ?? 'jwt',
    secret: process.env.BENCH_JWT_SECRET,
  }),
);
