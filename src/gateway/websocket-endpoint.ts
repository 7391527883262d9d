/**
 * The WebSocket endpoint of a node: an upgrade request passes the handshake
 * checks (`HandshakeGate`) within the handshake deadline, or is refused with
 * its status; what passes is upgraded by ws and handed to `NodeConnections`.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type ServerOptions } from 'ws';
import { GatewayError } from '../errors.js';
import { redactUrl } from '../observability/logger.js';
import { SUBPROTOCOL } from '../protocol/frames.js';
import { outcomeOf, pathOf, type HandshakeGate } from './handshake-gate.js';
import type { NodeConnections } from './node-connections.js';
import type { NodeStats } from './node-stats.js';
import type { ResolvedOptions } from './options.js';
import { refuseHandshake } from './refuse-handshake.js';
import type { ConnectionRegistry } from './registry.js';
import type { Connection } from './connection.js';
import { SocketWriter } from './socket-writer.js';

/**
 * A `WebSocketServer` for the pre-encoded write path (`wire-frame.ts`): the
 * gateway writes whole frames it encoded once to the raw socket, which is
 * only right while no extension transforms frames. Throws if
 * `perMessageDeflate` is enabled.
 */
export function createRawFrameServer(options: ServerOptions): WebSocketServer {
  refuseCompression(options);
  return new WebSocketServer(options);
}

/**
 * Throws unless `perMessageDeflate` is absent or false in `options` (a
 * gateway's or ws's): compressed sockets cannot take frames encoded once for all.
 */
export function refuseCompression(options: object): void {
  const value = (options as { perMessageDeflate?: unknown }).perMessageDeflate;
  if (value !== undefined && value !== false) {
    throw new TypeError(
      'perMessageDeflate must be false: the gateway writes pre-encoded frames to the socket (src/gateway/wire-frame.ts)',
    );
  }
}

export class WebSocketEndpoint {
  private readonly wss: WebSocketServer;

  constructor(
    private readonly options: ResolvedOptions,
    private readonly gate: HandshakeGate,
    private readonly connections: NodeConnections,
    private readonly registry: ConnectionRegistry<Connection>,
    private readonly stats: NodeStats,
    private readonly logger: Logger,
  ) {
    const serverOptions: ServerOptions & { maxFragments: number } = {
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: options.limits.maxFrameBytes,
      // The fragment cap of PROTOCOL.md section 2. ws (>= 8.21) counts every
      // data frame of a message, empty ones included, and past the cap closes
      // with 1008 and stops reading the socket. Each fragment is held as a
      // Buffer view until its message ends, so with ws's default (16 384) one
      // never-ending message of 1-byte fragments would pin ~2 MB per
      // connection. Not yet in @types/ws, hence the widened type.
      maxFragments: options.limits.maxFragments,
      // Protocol-level pings are answered by `Connection` under the same
      // frame-rate budget as every other client frame: with ws answering them
      // itself, a client flooding pings and never reading would grow the
      // server's unsent bytes without ever passing through our limits.
      autoPong: false,
      // Answer `agentsocket.v1` alone: never echo the `bearer.<jwt>` entry.
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    };
    this.wss = createRawFrameServer(serverOptions);
  }

  /** See `Gateway.attach`; pair it with `hardenServer(server, limits.handshakeTimeoutMs)`. */
  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      // Other upgrade paths on a shared server belong to other handlers.
      if (pathOf(req.url) !== this.options.path) return;
      this.handleUpgrade(req, socket, head);
    });
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // A function of no closure: this listener stays for the socket's life, and
    // a closure here would keep this handshake's scope (the request, its
    // headers and token, the deadline timer) alive with every idle connection.
    socket.on('error', destroySocket);
    // Cleared when the checks settle, whatever they decided. A client that
    // leaves first is seen by the timer (`destroyed`): no `close` listener
    // to add and take off again on every handshake.
    const deadline = setTimeout(
      handshakeDeadline,
      this.options.limits.handshakeTimeoutMs,
      this.stats,
      socket,
    );
    deadline.unref();
    this.admit(req, socket, head).then(
      () => clearTimeout(deadline),
      (error: unknown) => {
        clearTimeout(deadline);
        this.refuse(req, socket, error);
      },
    );
  }

  /** Refuses a handshake whose checks threw (a `GatewayError`, or anything else as a 500). */
  private refuse(req: IncomingMessage, socket: Duplex, error: unknown): void {
    const refusal =
      error instanceof GatewayError ? error : new GatewayError('internal', 'handshake failed');
    if (!(error instanceof GatewayError)) {
      this.logger.error(
        { err: (error as Error).message, url: redactUrl(req.url) },
        'handshake error',
      );
    }
    this.stats.countHandshake(outcomeOf(refusal));
    refuseHandshake(socket, refusal);
  }

  close(): void {
    this.wss.close();
  }

  /** Admits the handshake (or throws its refusal), then upgrades it. */
  private async admit(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const admission = await this.gate.admit(req, socket);
    if (!admission) return;
    // Held from here to the end of the turn, so the 101 answer, the welcome
    // and a replay read from memory leave in one write. If ws refuses the
    // upgrade instead, its `end()` uncorks.
    socket.cork();
    let upgraded = false;
    try {
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        upgraded = true;
        this.stats.countHandshake('accepted');
        void this.connections.open({
          ...admission,
          transport: new SocketWriter(ws, socket, this.connections.coalescer),
          corked: true,
        });
      });
    } finally {
      // ws decides within the call (there is no `verifyClient`): no callback
      // means it refused the upgrade (bad Sec-WebSocket-Key…) or the client
      // had gone, and the slot comes back now. No `close` listener to add
      // and remove on every handshake.
      if (!upgraded) this.registry.release(admission.reservation);
    }
  }
}

/** The handshake deadline passed with the checks still running: cut the client off. */
function handshakeDeadline(stats: NodeStats, socket: Duplex): void {
  if (socket.destroyed) return;
  stats.countHandshake('error');
  socket.destroy();
}

/** The socket's `error` listener: `this` is the socket. */
function destroySocket(this: Duplex): void {
  this.destroy();
}
