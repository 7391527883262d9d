/**
 * The Server-Sent Events endpoint of a node (`GET /v1/sse`, `POST
 * /v1/sse/ack`; docs/protocol.md, "Server-Sent Events transport"). A stream
 * passes the WebSocket handshake's checks (`HandshakeGate`: drain, rate,
 * origin, query, ticket, blocked user, registry limits), refused before any
 * byte of the stream; then it is a connection of the node like any other
 * (`NodeConnections`), written through an `SseWriter`.
 *
 * Acks come by POST, authorized by the `ackKey` its welcome gave the
 * stream's reader alone, compared in constant time and never logged. The
 * keys live here while their stream is open: bounded by the registry's
 * connection limit, each removed when its response closes. An ack for a
 * connection this node does not hold (another node behind a load balancer)
 * is refused with 404, like a wrong key.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError } from '../errors.js';
import type { SseAckRequest } from '../protocol/sse.js';
import type { Connection } from './connection.js';
import { outcomeOf, type HandshakeGate } from './handshake-gate.js';
import { newConnectionId, type NodeConnections } from './node-connections.js';
import type { NodeStats } from './node-stats.js';
import type { ConnectionRegistry } from './registry.js';
import { SseWriter } from './sse-writer.js';

/** Bytes of randomness in an `ackKey`. */
const ACK_KEY_BYTES = 24;

/** The response headers of a stream. */
export const SSE_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-store',
  // Proxies that buffer responses (nginx) would hold the frames back.
  'X-Accel-Buffering': 'no',
} as const;

interface OpenStream {
  readonly userId: string;
  readonly key: Buffer;
}

export class SseEndpoint {
  private readonly streams = new Map<string, OpenStream>();

  constructor(
    private readonly gate: HandshakeGate,
    private readonly connections: NodeConnections,
    private readonly registry: ConnectionRegistry<Connection>,
    private readonly stats: NodeStats,
  ) {}

  /** Open streams on this node. */
  get size(): number {
    return this.streams.size;
  }

  /**
   * Serves `GET /v1/sse`: rejects with the handshake's refusal (a
   * `GatewayError`) before anything is written; else answers 200 and the
   * response is the connection's until it closes.
   */
  async open(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let admission;
    try {
      admission = await this.gate.admit(req, req.socket, 'sse');
    } catch (error) {
      if (error instanceof GatewayError) this.stats.countHandshake(outcomeOf(error));
      throw error;
    }
    if (admission === null) return;
    const { reservation, user } = admission;
    if (res.destroyed || req.socket.destroyed) {
      this.registry.release(reservation);
      return;
    }
    this.stats.countHandshake('accepted');
    const id = newConnectionId();
    const ackKey = randomBytes(ACK_KEY_BYTES).toString('base64url');
    this.streams.set(id, { userId: user.userId, key: Buffer.from(ackKey) });
    res.once('close', () => this.streams.delete(id));
    // An idle stream is not an idle request: no server timeout may cut it.
    req.socket.setTimeout(0);
    res.writeHead(200, SSE_HEADERS);
    await this.connections.open({
      ...admission,
      transport: new SseWriter(res, ackKey, this.connections.coalescer),
      id,
      corked: false,
    });
  }

  /**
   * A cumulative ack of a stream of this node (`POST /v1/sse/ack`), taken as
   * the connection's own `ack` frame (frame-rate budget, liveness, critical
   * deadlines). 404 for an unknown connection or a wrong key; 400 (field `seq`)
   * for a seq the connection was never sent.
   */
  ack(request: SseAckRequest): void {
    const stream = this.streams.get(request.connectionId);
    const given = Buffer.from(request.ackKey);
    if (
      stream === undefined ||
      stream.key.length !== given.length ||
      !timingSafeEqual(stream.key, given)
    ) {
      throw new GatewayError(
        'not_found',
        'no SSE connection with this id and ackKey on this node',
        'connectionId',
      );
    }
    let connection: Connection | undefined;
    for (const c of this.registry.connectionsOf(stream.userId)) {
      if (c.id === request.connectionId) connection = c;
    }
    if (connection === undefined || connection.state !== 'open') {
      throw new GatewayError('not_found', 'the SSE connection is closing', 'connectionId');
    }
    if (request.seq > connection.sentSeq) {
      throw new GatewayError(
        'bad_request',
        `ack for seq ${request.seq}, but only ${connection.sentSeq} was sent`,
        'seq',
      );
    }
    connection.receive(`{"type":"ack","seq":${request.seq}}`);
  }
}
