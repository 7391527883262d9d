/**
 * The run routes of the HTTP API (protocol 1.1, "Run snapshots"):
 * - `GET /v1/users/{userId}/runs/{runId}`: a publisher's or operator's view
 *   (API key);
 * - `GET /v1/runs/{runId}` and `GET /v1/runs?limit=`: a browser's view of its
 *   own runs (the user's token, never an API key; CORS as `POST /v1/tickets`).
 *   The user comes from the token only, so another user's run is answered
 *   exactly as a missing one (404 `not_found`): nothing tells them apart.
 */
import type { UserAuthenticator } from '../auth/authenticator.js';
import { GatewayError } from '../errors.js';
import type { Gateway } from '../gateway/gateway-types.js';
import { DEFAULT_RUN_LIST_LIMIT, MAX_RUN_LIST_LIMIT } from '../gateway/run-reader.js';
import type { RunSnapshot } from '../runs/run-types.js';
import { sendJson } from './json-response.js';
import type { RouteContext, Router } from './router.js';

const BEARER = /^Bearer +(\S+)$/i;

export interface RunRouteParts {
  gateway: Pick<Gateway, 'readRun' | 'listRuns'>;
  authenticator: UserAuthenticator;
  requireApiKey(ctx: RouteContext): void;
  userIdParam(ctx: RouteContext): string;
  /** CORS of the browser routes: echoes an allowed `Origin`, refuses another with 403. */
  applyCors(ctx: RouteContext): void;
}

function found(run: RunSnapshot | null): RunSnapshot {
  if (run === null) throw new GatewayError('not_found', 'no such run');
  return run;
}

/** `?limit=`: absent → the default; otherwise an integer from 1 to the maximum. */
export function parseRunLimit(query: URLSearchParams): number {
  const values = query.getAll('limit');
  if (values.length === 0) return DEFAULT_RUN_LIST_LIMIT;
  const [value] = values;
  if (values.length > 1 || !/^\d{1,3}$/.test(value ?? '')) {
    throw new GatewayError(
      'bad_request',
      `limit must be an integer from 1 to ${MAX_RUN_LIST_LIMIT}`,
      'limit',
    );
  }
  // The range itself is checked once, by the gateway (`run-reader.ts`).
  return Number(value);
}

export function addRunRoutes(router: Router, parts: RunRouteParts): void {
  const userOfToken = async (ctx: RouteContext): Promise<string> => {
    const match = BEARER.exec(ctx.req.headers.authorization ?? '');
    if (!match) {
      throw new GatewayError(
        'unauthorized',
        'a user token is required: Authorization: Bearer <jwt>',
      );
    }
    return (await parts.authenticator.verify(match[1] as string)).userId;
  };

  const preflight = (ctx: RouteContext): void => {
    parts.applyCors(ctx);
    ctx.res.writeHead(204, {
      'Access-Control-Allow-Methods': 'GET',
      'Access-Control-Allow-Headers': 'Authorization',
      'Access-Control-Max-Age': '600',
    });
    ctx.res.end();
  };

  router.on('GET', '/v1/users/{userId}/runs/{runId}', async (ctx) => {
    parts.requireApiKey(ctx);
    const userId = parts.userIdParam(ctx);
    const run = await parts.gateway.readRun(userId, ctx.params.runId as string);
    sendJson(ctx.res, 200, { run: found(run) });
  });

  router.on('OPTIONS', '/v1/runs/{runId}', preflight);
  router.on('GET', '/v1/runs/{runId}', async (ctx) => {
    parts.applyCors(ctx);
    const userId = await userOfToken(ctx);
    const run = await parts.gateway.readRun(userId, ctx.params.runId as string);
    sendJson(ctx.res, 200, { run: found(run) });
  });

  router.on('OPTIONS', '/v1/runs', preflight);
  router.on(
    'GET',
    '/v1/runs',
    async (ctx) => {
      parts.applyCors(ctx);
      const userId = await userOfToken(ctx);
      const runs = await parts.gateway.listRuns(userId, parseRunLimit(ctx.query));
      sendJson(ctx.res, 200, { runs });
    },
    { query: ['limit'] },
  );
}
