/**
 * Reads what a WebSocket handshake asks for (PROTOCOL.md section 2) and
 * refuses malformed ones with 400 before anything else happens: where the
 * credential is (Authorization header, `bearer.` subprotocol or ticket), and
 * the resume cursor. Pure: no I/O, no clock.
 */
import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.js';
import { MAX_TOKEN_LENGTH } from '../protocol/codec.js';
import { BEARER_SUBPROTOCOL_PREFIX, SUBPROTOCOL } from '../protocol/frames.js';
import type { ReadCursor } from '../broker/broker.js';

export type Credential = { kind: 'token'; token: string } | { kind: 'ticket'; ticket: string };

export interface HandshakeRequest {
  credential: Credential | null;
  cursor: ReadCursor;
  /** Offered subprotocols included `agentsocket.v1`: answer with it. */
  wantsSubprotocol: boolean;
  /** Protocol 1.1 (`snapshots=1`): send runs as `run_snapshot` frames on open. */
  snapshots: boolean;
}

/** The only query parameters of the endpoint; anything else (say `access_token`) is refused. */
const KNOWN_PARAMS = new Set(['ticket', 'lastSeq', 'epoch', 'snapshots']);
const EPOCH_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const TICKET_PATTERN = /^[A-Za-z0-9_-]{16,128}$/;
/** Decimal digits; leading zeros are still a non-negative integer. */
const SEQ_PATTERN = /^[0-9]{1,16}$/;
/** Query parameter names that may be echoed in an error. */
const PLAIN_NAME = /^[A-Za-z_]{1,32}$/;

function bad(message: string, field: string): GatewayError {
  return new GatewayError('bad_request', message, field);
}

function single(params: URLSearchParams, name: string): string | null | GatewayError {
  const values = params.getAll(name);
  if (values.length > 1) return bad(`${name} is given more than once`, name);
  return values[0] ?? null;
}

export function parseHandshakeRequest(req: IncomingMessage): HandshakeRequest | GatewayError {
  // A WebSocket handshake never has a body. One announced anyway (chunked, or
  // a Content-Length) would become the first bytes of the WebSocket stream
  // after the upgrade, and is the classic shape of request smuggling through
  // an upgrade past a proxy: refuse it.
  const contentLength = req.headers['content-length'];
  if (
    req.headers['transfer-encoding'] !== undefined ||
    (contentLength !== undefined && contentLength !== '0')
  ) {
    return bad('a WebSocket handshake has no body', 'Content-Length');
  }
  const query = readQuery(req.url);
  if (query instanceof GatewayError) return query;
  const { lastSeq, epoch, ticket, snapshots } = query;
  if (snapshots !== null && snapshots !== '0' && snapshots !== '1') {
    return bad('snapshots must be 0 or 1', 'snapshots');
  }

  let cursor: ReadCursor = { kind: 'acked' };
  if (lastSeq !== null || epoch !== null) {
    if (lastSeq === null || epoch === null) {
      return bad('lastSeq and epoch go together', lastSeq === null ? 'lastSeq' : 'epoch');
    }
    if (!SEQ_PATTERN.test(lastSeq) || !Number.isSafeInteger(Number(lastSeq))) {
      return bad('lastSeq must be a non-negative integer', 'lastSeq');
    }
    if (!EPOCH_PATTERN.test(epoch)) return bad('epoch is malformed', 'epoch');
    cursor = { kind: 'position', seq: Number(lastSeq), epoch };
  }

  const protocols = readProtocols(req.headers['sec-websocket-protocol']);
  if (protocols instanceof GatewayError) return protocols;

  const authorization = req.headers.authorization;
  let headerToken: string | null = null;
  if (authorization !== undefined) {
    const match = /^Bearer ([^\s]+)$/i.exec(authorization);
    // A credential that is not a bearer token is a malformed token: 401, as
    // the refusal table says, not 400.
    if (!match) {
      return new GatewayError(
        'unauthorized',
        'Authorization must be "Bearer <token>"',
        'Authorization',
      );
    }
    headerToken = match[1] as string;
  }
  const { protocolToken, wantsSubprotocol } = protocols;
  const given =
    (headerToken === null ? 0 : 1) + (protocolToken === null ? 0 : 1) + (ticket === null ? 0 : 1);
  if (given > 1)
    return bad('give one credential: a header, a bearer subprotocol or a ticket', 'credential');

  let credential: Credential | null = null;
  const token = headerToken ?? protocolToken;
  if (token !== null) {
    // An oversized token is a bad token (401), decided by the authenticator;
    // cut it here so no later step handles megabytes.
    credential = { kind: 'token', token: token.slice(0, MAX_TOKEN_LENGTH + 1) };
  } else if (ticket !== null) {
    if (!TICKET_PATTERN.test(ticket)) return bad('ticket is malformed', 'ticket');
    credential = { kind: 'ticket', ticket };
  }
  return { credential, cursor, wantsSubprotocol, snapshots: snapshots === '1' };
}

/** The query parameters the endpoint knows; all null without a query. */
interface HandshakeQuery {
  lastSeq: string | null;
  epoch: string | null;
  ticket: string | null;
  snapshots: string | null;
}

const NO_QUERY: Readonly<HandshakeQuery> = Object.freeze({
  lastSeq: null,
  epoch: null,
  ticket: null,
  snapshots: null,
});

/**
 * The query of the request target, or its refusal. Most handshakes (a first
 * connection with a header token) have no query at all: they skip the URL
 * parser, which was a tenth of a handshake's CPU in the connection-rate profile.
 */
function readQuery(target: string | undefined): Readonly<HandshakeQuery> | GatewayError {
  if (target === undefined || !target.includes('?')) return NO_QUERY;
  const url = new URL(target, 'http://localhost');
  for (const name of url.searchParams.keys()) {
    if (!KNOWN_PARAMS.has(name)) {
      // Never echo the value: it may be a token. Nor a name that is not a
      // plain word: a token sent as `?<jwt>` is a parameter *name*.
      const shown = PLAIN_NAME.test(name) ? name : 'query';
      return bad(
        `query parameter "${shown}" is not allowed; send tokens in the Authorization header or the bearer subprotocol`,
        shown,
      );
    }
  }
  const lastSeq = single(url.searchParams, 'lastSeq');
  if (lastSeq instanceof GatewayError) return lastSeq;
  const epoch = single(url.searchParams, 'epoch');
  if (epoch instanceof GatewayError) return epoch;
  const ticket = single(url.searchParams, 'ticket');
  if (ticket instanceof GatewayError) return ticket;
  const snapshots = single(url.searchParams, 'snapshots');
  if (snapshots instanceof GatewayError) return snapshots;
  return { lastSeq, epoch, ticket, snapshots };
}

/** What the offered subprotocols say. */
interface OfferedProtocols {
  /** The token of the one `bearer.<token>` entry, or null. */
  protocolToken: string | null;
  wantsSubprotocol: boolean;
}

const NO_PROTOCOLS: Readonly<OfferedProtocols> = Object.freeze({
  protocolToken: null,
  wantsSubprotocol: false,
});

/** Reads `Sec-WebSocket-Protocol` (absent: nothing offered), or refuses it. */
function readProtocols(header: string | undefined): Readonly<OfferedProtocols> | GatewayError {
  if (header === undefined) return NO_PROTOCOLS;
  let offered = 0;
  let bearers = 0;
  let protocolToken: string | null = null;
  let wantsSubprotocol = false;
  for (const entry of header.split(',')) {
    const protocol = entry.trim();
    if (protocol.length === 0) continue;
    offered++;
    if (protocol === SUBPROTOCOL) wantsSubprotocol = true;
    if (protocol.startsWith(BEARER_SUBPROTOCOL_PREFIX)) {
      bearers++;
      protocolToken ??= protocol.slice(BEARER_SUBPROTOCOL_PREFIX.length);
    }
  }
  if (offered > 0 && !wantsSubprotocol) {
    return bad(`subprotocol ${SUBPROTOCOL} must be offered`, 'Sec-WebSocket-Protocol');
  }
  if (bearers > 1) return bad('more than one bearer subprotocol', 'Sec-WebSocket-Protocol');
  return { protocolToken, wantsSubprotocol };
}
