/**
 * The HTTP API of PROTOCOL.md section 5: publish, batch, broadcast,
 * connections, tickets, stats, health, readiness and metrics.
 *
 * Contracts:
 * - Every route but `/healthz`, `/readyz`, `/v1/openapi.json`, `POST /v1/tickets`
 *   and `GET /v1/runs…` needs `Authorization: Bearer <api-key>`; a user token
 *   is never accepted there, and those take only a user token (`run-routes.ts`).
 * - Every error is `{"error":{"code","message","field?"}}` with the status of
 *   its code; a broker outage answers 503 with `Retry-After`.
 * - The body is validated before anything is published: a refused batch
 *   publishes nothing.
 * - Requests are counted by route template, never by raw path.
 * - No token, ticket or API key is logged: logs name the route, never the
 *   query or the headers.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { AuthError, type UserAuthenticator } from '../auth/authenticator.js';
import type { TicketStore } from '../auth/ticket-store.js';
import { BrokerUnavailableError } from '../broker/broker.js';
import { GatewayError, RETRY_AFTER_SECONDS } from '../errors.js';
import { brokerUnavailable } from '../gateway/broker-failures.js';
import { MAX_WAIT_MS as MAX_PUBLISH_WAIT_MS } from '../gateway/gateway.js';
import type { BatchItem, Gateway } from '../gateway/gateway-types.js';
import { DEFAULT_LIMITS, type GatewayLimits } from '../gateway/options.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { EVENT_NAME_PATTERN } from '../protocol/agent-events.js';
import {
  DEFAULT_MAX_DATA_DEPTH,
  validateEventData,
  validateEventInput,
  type EventInput,
} from '../protocol/event-input.js';
import type { JsonValue } from '../protocol/frames.js';
import { isValidUserId, USER_ID_RULE } from '../protocol/user-id.js';
import type { Supervisor } from '../tasks/supervisor.js';
import { addAguiRoutes } from './ag-ui-route.js';
import { createCors } from './cors.js';
import { sendError, sendJson } from './json-response.js';
import { createOpenApiRoute } from './openapi-route.js';
import { readJsonBody } from './read-json-body.js';
import { addRunRoutes } from './run-routes.js';
import { addSseRoutes } from './sse-routes.js';
import { Router, splitRequestTarget, unknownQueryParameter, type RouteContext } from './router.js';
import { verifyUserBearer } from './user-token.js';
import { parseWait } from './wait-param.js';

export { parseWait };

/** The longest `?wait=` of a publish, in ms (PROTOCOL.md section 5): the gateway's own bound. */
export { MAX_PUBLISH_WAIT_MS };

/** Checks `Authorization: Bearer <api-key>` (`auth/api-keys.ts` implements it). */
export interface ApiKeyVerifier {
  verifyAuthorizationHeader(header: string | undefined): boolean;
}

export interface ApiDependencies {
  gateway: Gateway;
  /** Background tasks: shown in `/v1/stats`, unhealthy critical ones fail `/readyz`. */
  supervisor: Supervisor;
  metrics: GatewayMetrics;
  apiKeys: ApiKeyVerifier;
  /** Verifies the user token of `POST /v1/tickets` and `GET /v1/runs…`. */
  authenticator: UserAuthenticator;
  tickets: TicketStore;
  /** Origins allowed to call `POST /v1/tickets` and `GET /v1/runs…` from a browser. Default: any. */
  allowedOrigins?: readonly string[];
  /** Body, batch and data limits. Default: `DEFAULT_LIMITS`. */
  limits?: Partial<
    Pick<GatewayLimits, 'maxBodyBytes' | 'maxBatchEvents' | 'maxDataBytes' | 'maxDataDepth'>
  >;
  /** Request logs (route, status, duration; never headers or query). Default: none. */
  logger?: Logger;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Any failure as the `GatewayError` to answer with; unknown errors become 500. */
function toGatewayError(error: unknown, requestId: string): GatewayError {
  if (error instanceof GatewayError) return error;
  // One mapping of broker failures for the node and the HTTP API (gateway/broker-failures.ts).
  if (error instanceof BrokerUnavailableError) return brokerUnavailable();
  if (error instanceof AuthError) {
    // The token may be fine: the keys to check it could not be fetched. As at
    // the handshake, that is an outage to retry, not a refusal of the user.
    if (error.reason === 'key_unavailable') {
      return new GatewayError(
        'unavailable',
        'the token keys could not be fetched; retry later',
        undefined,
        RETRY_AFTER_SECONDS,
      );
    }
    return new GatewayError('unauthorized', `token refused: ${error.reason}`);
  }
  return new GatewayError('internal', `unexpected server error (request ${requestId})`);
}

/**
 * A request listener of the HTTP API, connect-style. Returns true when the
 * request is the API's (answered, or being answered); false when its path is
 * none of the API's and it was handed to `next`, synchronously and untouched
 * (no header set, nothing counted or logged). Without `next` such a request
 * is answered 404 `not_found`.
 */
export type ApiHandler = (req: IncomingMessage, res: ServerResponse, next?: () => void) => boolean;

/**
 * Builds the request listener of the HTTP API: 404 for unknown paths (or
 * `next`, see `ApiHandler`), 405 (with `Allow`) for a known path with
 * another method. `createHttpApi` (http-api.ts) is the public way in.
 */
export function createApiHandler(deps: ApiDependencies): ApiHandler {
  const limits = { ...DEFAULT_LIMITS, ...deps.limits };
  const cors = createCors(deps.allowedOrigins);
  const router = new Router();

  const requireApiKey = (ctx: RouteContext): void => {
    if (!deps.apiKeys.verifyAuthorizationHeader(ctx.req.headers.authorization)) {
      throw new GatewayError(
        'unauthorized',
        'a valid API key is required: Authorization: Bearer <api-key>',
      );
    }
  };

  const userIdParam = (ctx: RouteContext): string => {
    const userId = ctx.params.userId;
    if (!isValidUserId(userId)) {
      throw new GatewayError('bad_request', `userId must be ${USER_ID_RULE}`, 'userId');
    }
    return userId;
  };

  const applyCors = cors.apply;

  router.on('OPTIONS', '/v1/tickets', (ctx) =>
    cors.preflight(ctx, 'POST', 'Authorization, Content-Type'),
  );

  router.on('POST', '/v1/tickets', async (ctx) => {
    cors.apply(ctx);
    const user = await verifyUserBearer(ctx.req, deps.authenticator);
    const issued = await deps.tickets.issue(user);
    sendJson(ctx.res, 201, { ticket: issued.ticket, expiresAt: issued.expiresAt });
  });

  router.on(
    'POST',
    '/v1/users/{userId}/events',
    async (ctx) => {
      requireApiKey(ctx);
      const userId = userIdParam(ctx);
      const waitMs = parseWait(ctx.query);
      const body = await readJsonBody(ctx.req, limits.maxBodyBytes);
      const checked = validateEventInput(body, limits.maxDataBytes, limits.maxDataDepth);
      if (!checked.ok) throw validationError(checked.failure);
      const result = await deps.gateway.publish(userId, body as EventInput, { waitMs });
      sendJson(ctx.res, 202, result);
    },
    { query: ['wait'] },
  );

  router.on('POST', '/v1/events', async (ctx) => {
    requireApiKey(ctx);
    const body = await readJsonBody(ctx.req, limits.maxBodyBytes);
    const items = parseBatch(body, limits.maxBatchEvents, limits.maxDataBytes, limits.maxDataDepth);
    const results = await deps.gateway.publishBatch(items);
    sendJson(ctx.res, 202, { results });
  });

  router.on('POST', '/v1/broadcast', async (ctx) => {
    requireApiKey(ctx);
    const body = await readJsonBody(ctx.req, limits.maxBodyBytes);
    const { event, data } = parseBroadcast(body, limits.maxDataBytes, limits.maxDataDepth);
    const result = await deps.gateway.broadcast(event, data);
    sendJson(ctx.res, 202, result);
  });

  // Cluster-wide: every node's connections of the user (docs/redis.md, "Operators").
  router.on('GET', '/v1/users/{userId}/connections', async (ctx) => {
    requireApiKey(ctx);
    const userId = userIdParam(ctx);
    sendJson(ctx.res, 200, { connections: await deps.gateway.connectionsEverywhere(userId) });
  });

  router.on('DELETE', '/v1/users/{userId}/connections', async (ctx) => {
    requireApiKey(ctx);
    const userId = userIdParam(ctx);
    sendJson(ctx.res, 200, { closed: await deps.gateway.disconnectUserEverywhere(userId) });
  });

  router.on('GET', '/v1/stats', (ctx) => {
    requireApiKey(ctx);
    sendJson(ctx.res, 200, { ...deps.gateway.stats(), tasks: deps.supervisor.snapshot() });
  });

  addRunRoutes(router, {
    gateway: deps.gateway,
    authenticator: deps.authenticator,
    requireApiKey,
    userIdParam,
    applyCors,
  });

  addAguiRoutes(router, {
    gateway: deps.gateway,
    authenticator: deps.authenticator,
    cors,
    maxBodyBytes: limits.maxBodyBytes,
  });

  addSseRoutes(router, { gateway: deps.gateway, cors, maxBodyBytes: limits.maxBodyBytes });

  router.on('GET', '/healthz', ({ res }) => sendJson(res, 200, { status: 'ok' }));

  router.on('GET', '/readyz', ({ res }) => {
    const readiness = deps.gateway.readiness();
    // A Set: the gateway's own readiness may already report the supervisor's tasks.
    const reasons = [
      ...new Set([
        ...(readiness.ready ? [] : readiness.reasons),
        ...deps.supervisor.unhealthyCritical(),
      ]),
    ];
    // The engine's persistence, when it has one (Redis): what a restart of it loses.
    const persistence =
      readiness.persistence === undefined ? {} : { persistence: readiness.persistence };
    if (reasons.length === 0) {
      sendJson(res, 200, { ready: true, reasons: [], ...persistence });
      return;
    }
    sendJson(res, 503, {
      ready: false,
      reasons,
      ...persistence,
      error: { code: 'unavailable', message: `not ready: ${reasons.join('; ')}` },
    });
  });

  router.on('GET', '/v1/openapi.json', createOpenApiRoute(limits.maxBatchEvents));

  router.on('GET', '/metrics', async (ctx) => {
    requireApiKey(ctx);
    const text = await deps.metrics.registry.metrics();
    ctx.res.writeHead(200, {
      'Content-Type': deps.metrics.registry.contentType,
      'Content-Length': String(Buffer.byteLength(text)),
      'Cache-Control': 'no-store',
    });
    ctx.res.end(text);
  });

  return (req, res, next) => {
    const method = req.method ?? 'GET';
    const { pathname, query } = splitRequestTarget(req.url ?? '/');
    const match = router.match(method, pathname);
    // Not a path of the API: the embedding app's request, left as it came.
    if (match.kind === 'not_found' && next) {
      next();
      return false;
    }
    const started = performance.now();
    const requestId = randomUUID();
    // A closed set of labels: the route table's templates and methods, never the raw path.
    const route =
      match.kind === 'found'
        ? `${method} ${match.route}`
        : match.kind === 'method_not_allowed'
          ? `* ${match.route}`
          : 'unmatched';
    res.setHeader('X-Request-Id', requestId);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.on('close', () => {
      const status = res.writableFinished ? String(res.statusCode) : 'aborted';
      deps.metrics.httpRequests.inc({ route, status });
      const durationMs = Math.round((performance.now() - started) * 10) / 10;
      const fields = { requestId, route, status, durationMs };
      if (res.statusCode >= 500) deps.logger?.warn(fields, 'http request failed');
      else deps.logger?.debug(fields, 'http request');
    });

    const fail = (error: unknown): void => {
      const gatewayError = toGatewayError(error, requestId);
      if (gatewayError.code === 'internal') {
        const err = error instanceof Error ? error.message : String(error);
        deps.logger?.error({ requestId, route, err }, 'unexpected error in the HTTP API');
      }
      // A body left unread cannot be skipped on a kept-alive connection.
      sendError(res, gatewayError, req.complete ? {} : { Connection: 'close' });
    };

    if (match.kind === 'not_found') {
      fail(new GatewayError('not_found', 'no such route'));
      return true;
    }
    if (match.kind === 'method_not_allowed') {
      res.setHeader('Allow', match.allow.join(', '));
      fail(new GatewayError('method_not_allowed', `${match.route} does not take ${method}`));
      return true;
    }
    // Before authentication: a credential in the query is refused whether or
    // not the header is valid, and the value is never echoed.
    const unknown = unknownQueryParameter(query, match.query);
    if (unknown !== undefined) {
      fail(
        new GatewayError(
          'bad_request',
          `query parameter "${unknown}" is not taken by ${match.route}; credentials go in the Authorization header`,
          unknown,
        ),
      );
      return true;
    }
    const ctx: RouteContext = {
      req,
      res,
      params: match.params,
      query,
      route: match.route,
      requestId,
    };
    try {
      const done = match.handler(ctx);
      if (done instanceof Promise) done.catch(fail);
    } catch (error) {
      fail(error);
    }
    return true;
  };
}

function validationError(failure: { field: string; message: string; tooLarge?: boolean }) {
  return new GatewayError(
    failure.tooLarge ? 'payload_too_large' : 'bad_request',
    failure.message,
    failure.field,
  );
}

/**
 * `{events: [{userId, event, …}, …]}`: every item is checked before anything
 * is published; the first bad one refuses the whole batch, naming
 * `events[i].field`.
 */
export function parseBatch(
  body: unknown,
  maxEvents: number,
  maxDataBytes: number,
  maxDataDepth: number = DEFAULT_MAX_DATA_DEPTH,
): BatchItem[] {
  if (!isRecord(body))
    throw new GatewayError('bad_request', 'the body must be a JSON object', 'body');
  for (const key of Object.keys(body)) {
    if (key !== 'events') {
      throw new GatewayError(
        'bad_request',
        `unknown field "${key.slice(0, 64)}"`,
        key.slice(0, 64),
      );
    }
  }
  const events = body.events;
  if (!Array.isArray(events) || events.length === 0) {
    throw new GatewayError('bad_request', 'events must be a non-empty array', 'events');
  }
  if (events.length > maxEvents) {
    throw new GatewayError(
      'bad_request',
      `a batch holds at most ${maxEvents} events, got ${events.length}`,
      'events',
    );
  }
  return events.map((item: unknown, index) => {
    const at = `events[${index}]`;
    if (!isRecord(item)) throw new GatewayError('bad_request', `${at} must be an object`, at);
    const { userId, ...input } = item;
    if (!isValidUserId(userId)) {
      throw new GatewayError('bad_request', `${at}.userId must be ${USER_ID_RULE}`, `${at}.userId`);
    }
    const checked = validateEventInput(input, maxDataBytes, maxDataDepth);
    if (!checked.ok) {
      const { field, message, tooLarge } = checked.failure;
      throw validationError({ field: `${at}.${field}`, message, tooLarge });
    }
    return { ...(input as unknown as EventInput), userId };
  });
}

/** `{event, data?}` of a broadcast; `data` goes through the same check as an event's. */
export function parseBroadcast(
  body: unknown,
  maxDataBytes: number,
  maxDataDepth: number = DEFAULT_MAX_DATA_DEPTH,
): { event: string; data?: JsonValue } {
  if (!isRecord(body))
    throw new GatewayError('bad_request', 'the body must be a JSON object', 'body');
  for (const key of Object.keys(body)) {
    if (key !== 'event' && key !== 'data') {
      throw new GatewayError(
        'bad_request',
        `unknown field "${key.slice(0, 64)}"`,
        key.slice(0, 64),
      );
    }
  }
  const { event, data } = body;
  if (typeof event !== 'string' || !EVENT_NAME_PATTERN.test(event)) {
    throw new GatewayError('bad_request', 'event must match ^[a-z][a-z0-9_.:-]{0,63}$', 'event');
  }
  if (data === undefined) return { event };
  const checked = validateEventData(data, maxDataBytes, maxDataDepth);
  if (!checked.ok) throw validationError(checked.failure);
  return { event, data: checked.value.data };
}
