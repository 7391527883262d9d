/**
 * The Server-Sent Events transport's routes (docs/protocol.md, "Server-Sent
 * Events transport"): `GET /v1/sse?ticket=` opens a stream of the user's
 * frames, `POST /v1/sse/ack` acks on it. The stream logic is the gateway's
 * (`gateway/sse-endpoint.ts`); this file reads requests and answers.
 *
 * CORS as for `POST /v1/tickets`: the stream's origin is checked by the
 * handshake (the gateway's `allowedOrigins`, 403 naming `Origin`) and echoed
 * here so a browser can read the stream; `Last-Event-ID` and `Content-Type`
 * are what a preflight may ask to send.
 */
import { GatewayError } from '../errors.js';
import type { Gateway } from '../gateway/gateway-types.js';
import type { SseAckRequest } from '../protocol/sse.js';
import type { Cors } from './cors.js';
import { sendJson } from './json-response.js';
import { readJsonBody } from './read-json-body.js';
import type { Router } from './router.js';

export const SSE_ROUTE = '/v1/sse';
export const SSE_ACK_ROUTE = '/v1/sse/ack';

const CONNECTION_ID = /^c_[0-9a-f-]{36}$/;
const ACK_KEY = /^[A-Za-z0-9_-]{16,64}$/;

export interface SseRouteDependencies {
  gateway: Pick<Gateway, 'openSseStream' | 'ackSseStream'>;
  cors: Cors;
  maxBodyBytes: number;
}

export function addSseRoutes(router: Router, deps: SseRouteDependencies): void {
  router.on('OPTIONS', SSE_ROUTE, (ctx) => deps.cors.preflight(ctx, 'GET', 'Last-Event-ID'));
  router.on(
    'GET',
    SSE_ROUTE,
    async (ctx) => {
      deps.cors.apply(ctx);
      await deps.gateway.openSseStream(ctx.req, ctx.res);
    },
    // The handshake's parameters; `handshake-request.ts` checks their values.
    { query: ['ticket', 'lastSeq', 'epoch', 'snapshots'] },
  );
  router.on('OPTIONS', SSE_ACK_ROUTE, (ctx) => deps.cors.preflight(ctx, 'POST', 'Content-Type'));
  router.on('POST', SSE_ACK_ROUTE, async (ctx) => {
    deps.cors.apply(ctx);
    const request = parseAck(await readJsonBody(ctx.req, deps.maxBodyBytes));
    deps.gateway.ackSseStream(request);
    sendJson(ctx.res, 200, { acked: request.seq });
  });
}

/** `{connectionId, ackKey, seq}`, nothing else; the first bad field is named. */
export function parseAck(body: unknown): SseAckRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new GatewayError('bad_request', 'the body must be a JSON object', 'body');
  }
  const record = body as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (key !== 'connectionId' && key !== 'ackKey' && key !== 'seq') {
      const shown = key.slice(0, 64);
      throw new GatewayError('bad_request', `unknown field "${shown}"`, shown);
    }
  }
  const { connectionId, ackKey, seq } = record;
  if (typeof connectionId !== 'string' || !CONNECTION_ID.test(connectionId)) {
    throw new GatewayError(
      'bad_request',
      'connectionId must be the welcome frame connectionId',
      'connectionId',
    );
  }
  if (typeof ackKey !== 'string' || !ACK_KEY.test(ackKey)) {
    throw new GatewayError('bad_request', 'ackKey must be the welcome frame ackKey', 'ackKey');
  }
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) {
    throw new GatewayError('bad_request', 'seq must be a non-negative integer', 'seq');
  }
  return { connectionId, ackKey, seq };
}
