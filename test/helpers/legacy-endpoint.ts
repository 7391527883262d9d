/**
 * An embedder's own WebSocket endpoint next to the gateway's, the way the old
 * manager was used: the embedder accepts the socket, authenticates it by its
 * own means (here: it trusts `?user=`, which is the point of the test, not a
 * pattern to copy) and hands it to `add_connection`.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { LegacyConnectionManager } from '../../src/compat/legacy-manager.js';
import type { Harness } from './gateway-harness.js';

export interface LegacyEndpoint {
  /** ws://127.0.0.1:PORT/legacy */
  url: string;
  /** What each `add_connection` resolved to (connection id) or rejected with, in arrival order. */
  readonly outcomes: Promise<string>[];
  close(): void;
}

export function serveLegacyEndpoint(h: Harness, manager: LegacyConnectionManager): LegacyEndpoint {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const outcomes: Promise<string>[] = [];
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/legacy') return;
    const userId = url.searchParams.get('user') ?? '';
    wss.handleUpgrade(req, socket, head, (ws) => {
      const userAgent = req.headers['user-agent'];
      const added = manager.add_connection(userId, ws, {
        ip: req.socket.remoteAddress ?? 'unknown',
        ...(userAgent !== undefined ? { userAgent } : {}),
      });
      // A refused socket is the embedder's to close.
      added.catch(() => ws.close(1008, 'refused'));
      outcomes.push(added);
    });
  };
  h.server.on('upgrade', onUpgrade);
  return {
    url: h.wsUrl.replace('/v1/ws', '/legacy'),
    outcomes,
    close() {
      h.server.off('upgrade', onUpgrade);
      wss.close();
    },
  };
}
