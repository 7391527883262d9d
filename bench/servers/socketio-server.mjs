/**
 * The popular peer: Socket.IO 4, websocket transport only, a room per user.
 * The user comes from `handshake.auth.token` (verified with jose, like the
 * others) in a middleware; publish = `io.to(userId).emit('token', data)`.
 */
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { hostServer, listenLoopback } from './server-host.mjs';
import { createTokenVerifier } from './token-verifier.mjs';

function createSocketIoAdapter({ authMode, secret }) {
  const verify = createTokenVerifier(authMode, secret);
  const httpServer = createServer();
  const io = new Server(httpServer, {
    transports: ['websocket'],
    serveClient: false,
    perMessageDeflate: false,
  });

  io.use((socket, next) => {
    verify(socket.handshake.auth?.token ?? '').then(
      (userId) => {
        socket.data.userId = userId;
        next();
      },
      () => next(new Error('unauthorized')),
    );
  });
  io.on('connection', (socket) => {
    socket.join(socket.data.userId);
  });

  return {
    listen: () => listenLoopback(httpServer),
    publish(userId, data) {
      io.to(userId).emit('token', data);
    },
    publishEvent(userId, event, runId, data) {
      io.to(userId).emit(event, { runId, ...data });
    },
    broadcast(data) {
      io.emit('bench', data);
    },
    connectionCount: () => io.engine.clientsCount,
    close: () => new Promise((resolve) => io.close(() => resolve())),
  };
}

await hostServer(
  createSocketIoAdapter({
    authMode: process.env.BENCH_AUTH ?? 'jwt',
    secret: process.env.BENCH_JWT_SECRET,
  }),
);
