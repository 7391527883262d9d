/**
 * The checks of a WebSocket handshake (PROTOCOL.md section 2), cheapest
 * first, each refusing with its status before anything is upgraded: path,
 * draining, per-IP handshake rate, origin, query and credential, broker,
 * token or ticket, blocked user, connection limits. What passes leaves with
 * a reserved registry slot.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { AuthError, type VerifiedUser } from '../auth/authenticator.js';
import type { TicketStore } from '../auth/ticket-store.js';
import type { BrokerHealth } from '../broker/broker.js';
import type { ReadCursor } from '../broker/stream-engine.js';
import { GatewayError, RETRY_AFTER_SECONDS as RETRY_AFTER_UNAVAILABLE } from '../errors.js';
import type { HandshakeOutcome } from '../observability/metrics.js';
import { clientIp } from './client-ip.js';
import type { Connection } from './connection.js';
import type { TransportKind } from './connection-transport.js';
import { parseHandshakeRequest } from './handshake-request.js';
import { parseSseRequest } from './sse-request.js';
import type { NodeLifecycle } from './node-lifecycle.js';
import type { NodeStats } from './node-stats.js';
import type { ResolvedOptions } from './options.js';
import type { ConnectionRegistry, Reservation } from './registry.js';
import { KeyedRateLimiter } from './token-bucket.js';

/** Client IPs whose handshake rate is tracked at once. */
const MAX_TRACKED_IPS = 100_000;

/** The node's parts the gate works with. */
export interface HandshakeParts {
  readonly options: ResolvedOptions;
  readonly registry: ConnectionRegistry<Connection>;
  readonly tickets: TicketStore;
  /** Drain and broker start, and whether the broker can serve a new connection. */
  readonly lifecycle: NodeLifecycle;
  readonly broker: { health(): BrokerHealth };
  readonly stats: NodeStats;
  /** Resolves when the broker has started. */
  readonly ready: Promise<void>;
}

/** The longest `User-Agent` a connection keeps: enough to tell clients apart, bounded. */
const USER_AGENT_MAX = 256;

/** A handshake that passed every check, holding a registry slot until it is attached or released. */
export interface Admission {
  user: VerifiedUser;
  ip: string;
  cursor: ReadCursor;
  /** `snapshots=1`: runs as `run_snapshot` frames on open. */
  snapshots: boolean;
  reservation: Reservation;
  /** The client's `User-Agent`, cut to `USER_AGENT_MAX` characters (operator listings show it). */
  userAgent: string | null;
}

export class HandshakeGate {
  private readonly limiter: KeyedRateLimiter;
  /** `parts.ready` resolved: handshakes no longer wait a microtask on it. */
  private started = false;

  constructor(private readonly parts: HandshakeParts) {
    const rate = parts.options.limits.handshakesPerIpPerSecond;
    this.limiter = new KeyedRateLimiter(rate, rate, MAX_TRACKED_IPS);
    // A failed start is seen by the handshakes that await `ready` (it rejects them).
    parts.ready.then(
      () => (this.started = true),
      () => undefined,
    );
  }

  /**
   * Runs every check; rejects with the refusal (a `GatewayError`), or
   * resolves null when the client went away during the checks.
   */
  async admit(
    req: IncomingMessage,
    socket: Duplex,
    transport: TransportKind = 'websocket',
  ): Promise<Admission | null> {
    const { options } = this.parts;
    // `GET /v1/sse` was routed by the HTTP API: its path is not the WebSocket's.
    if (transport === 'websocket' && pathOf(req.url) !== options.path) {
      throw new GatewayError('not_found', 'no such endpoint');
    }
    this.assertNotDraining();
    const ip = clientIp(req, options.trustedProxies);
    const wait = this.limiter.take(ip, Date.now());
    if (wait > 0) {
      throw new GatewayError(
        'rate_limited',
        'too many handshakes from this address',
        undefined,
        wait,
      );
    }
    const origin = req.headers.origin;
    if (options.allowedOrigins && origin !== undefined && !options.allowedOrigins.has(origin)) {
      throw new GatewayError('forbidden', 'origin not allowed', 'Origin');
    }
    const parsed = transport === 'sse' ? parseSseRequest(req) : parseHandshakeRequest(req);
    if (parsed instanceof GatewayError) throw parsed;
    if (!parsed.credential) throw new GatewayError('unauthorized', 'a token or ticket is required');
    if (!this.started) await this.parts.ready;
    this.parts.lifecycle.assertUsable(this.parts.broker.health());

    let user: VerifiedUser;
    if (parsed.credential.kind === 'token') {
      user = await this.verifyToken(parsed.credential.token);
    } else {
      const ticketUser = await this.parts.tickets.consume(parsed.credential.ticket);
      if (!ticketUser) throw new GatewayError('unauthorized', 'ticket unknown, used or expired');
      user = ticketUser;
    }
    if (user.expiresAt !== null && user.expiresAt <= Date.now()) {
      throw new GatewayError('unauthorized', 'token expired');
    }
    if (options.isUserBlocked && (await options.isUserBlocked(user.userId))) {
      throw new GatewayError('forbidden', 'user blocked');
    }
    if (socket.destroyed) return null;
    this.assertNotDraining();
    return {
      user,
      ip,
      cursor: parsed.cursor,
      snapshots: parsed.snapshots,
      reservation: this.reserveSlot(user.userId, ip),
      userAgent: req.headers['user-agent']?.slice(0, USER_AGENT_MAX) ?? null,
    };
  }

  /** A connection slot for the user and IP, or the refusal of the limit that is full. */
  reserveSlot(userId: string, ip: string): Reservation {
    const { limits } = this.parts.options;
    const reservation = this.parts.registry.reserve(userId, ip, {
      maxConnectionsPerUser: limits.maxConnectionsPerUser,
      maxConnectionsPerIp: limits.maxConnectionsPerIp,
      maxConnections: limits.maxConnections,
      evictOldest: limits.userConnectionPolicy === 'evict-oldest',
    });
    if (reservation === 'node_limit') {
      throw new GatewayError(
        'unavailable',
        'node connection limit reached',
        undefined,
        RETRY_AFTER_UNAVAILABLE,
      );
    }
    if (reservation === 'user_limit' || reservation === 'ip_limit') {
      throw new GatewayError(
        'too_many_connections',
        reservation === 'user_limit'
          ? 'too many connections for this user'
          : 'too many connections from this address',
        undefined,
        RETRY_AFTER_UNAVAILABLE,
      );
    }
    return reservation;
  }

  private async verifyToken(token: string): Promise<VerifiedUser> {
    try {
      return await this.parts.options.authenticator.verify(token);
    } catch (error) {
      if (!(error instanceof AuthError)) throw error;
      this.parts.stats.countError(`auth_${error.reason}`);
      if (error.reason === 'key_unavailable') {
        throw new GatewayError(
          'unavailable',
          'token keys unavailable',
          undefined,
          RETRY_AFTER_UNAVAILABLE,
        );
      }
      throw new GatewayError('unauthorized', error.message);
    }
  }

  private assertNotDraining(): void {
    this.parts.lifecycle.assertAccepting();
  }
}

/** The path of a request URL, without parsing the whole URL. */
export function pathOf(url: string | undefined): string {
  if (!url) return '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/** The handshakes metric's label for a refusal. */
export function outcomeOf(error: GatewayError): HandshakeOutcome {
  switch (error.code) {
    case 'bad_request':
    case 'unauthorized':
    case 'forbidden':
    case 'too_many_connections':
    case 'rate_limited':
    case 'unavailable':
      return error.code;
    default:
      return 'error';
  }
}
