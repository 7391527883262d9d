/**
 * The HTTP API as a handler an app mounts on its own server: publish, batch,
 * broadcast, connections, tickets, stats, health, readiness and metrics
 * (docs/protocol.md, "HTTP API"), beside the app's own routes.
 *
 * Contracts:
 * - One code path: `agentsocket serve` builds its API with this factory too,
 *   so an embedded API has the CLI server's authentication, limits, errors,
 *   request ids, metrics and logs.
 * - Everything but the API keys comes from the gateway: its authenticator
 *   (for `POST /v1/tickets`), ticket store, allowed origins, body and data
 *   limits, supervisor, metrics registry and logger. One source for each.
 * - The handler answers only its own paths; any other request goes to `next`
 *   untouched (see `ApiHandler`), so an unknown `/v1/...` path of the app
 *   stays the app's.
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { ApiKeys } from '../auth/api-keys.js';
import type { UserAuthenticator } from '../auth/authenticator.js';
import { GatewayError } from '../errors.js';
import { GatewayNode } from '../gateway/gateway.js';
import { OptionError } from '../options/validators.js';
import { createApiHandler, type ApiHandler, type ApiKeyVerifier } from './api-routes.js';
import { sendError } from './json-response.js';

export type { ApiKeyVerifier };

/**
 * `(req, res, next?) => boolean`: true when the API took the request, false
 * when it handed it to `next` (see `ApiHandler` in api-routes.ts).
 */
export type HttpApiHandler = ApiHandler;

export interface HttpApiOptions {
  /**
   * Keys of publishers and operators (`Authorization: Bearer <api-key>`):
   * every currently valid key (several during a rotation; 16-512 characters,
   * not shaped like a JWT), or your own verifier. Required.
   */
  apiKeys: readonly string[] | ApiKeyVerifier;
  /** Verifies the user token of `POST /v1/tickets`. Default: the gateway's authenticator. */
  authenticator?: UserAuthenticator;
  /**
   * Origins allowed to call `POST /v1/tickets` from a browser (exact match).
   * Default: the gateway's `allowedOrigins` (any, when it has none).
   */
  allowedOrigins?: readonly string[];
  /** Request logs (route, status, duration; never headers or query). Default: the gateway's logger. */
  logger?: Logger;
  /**
   * A path the API lives under, e.g. `/realtime`: `POST /realtime/v1/events`,
   * `GET /realtime/healthz`. Default: none (`/v1/...`, `/healthz`, `/readyz`,
   * `/metrics`). Not needed under Express, whose `app.use('/realtime', api)`
   * strips the path itself. The WebSocket path is the gateway's `path` option.
   */
  prefix?: string;
}

/** `/segment[/segment…]`: no trailing slash, no query, no fragment. */
const PREFIX = /^(\/[^/?#\s]+)+$/;

/**
 * The HTTP API of `gateway` as a connect-style handler
 * `(req, res, next?) => boolean` for `node:http`, Express (`app.use(api)`) and
 * Fastify (an `onRequest` hook); recipes in docs/operations.md, "Embedding
 * the HTTP API". Mount it before any body parser: it reads its own bodies,
 * within `limits.maxBodyBytes`.
 *
 * @throws OptionError naming the first bad option (an API key is named by
 *   its position, never shown).
 *
 * @example
 * const gateway = createGateway({ authenticator: createJwtAuthenticator({ secret }) });
 * const api = createHttpApi(gateway, { apiKeys: [process.env.API_KEY!] });
 * const server = createServer((req, res) => api(req, res, () => app(req, res)));
 * gateway.attach(server);
 */
export function createHttpApi(gateway: GatewayNode, options: HttpApiOptions): HttpApiHandler {
  if (!(gateway instanceof GatewayNode)) {
    throw new OptionError('createHttpApi: gateway must be the GatewayNode of createGateway()');
  }
  // Plain JavaScript may leave the options out: the apiKeys check below names what is missing.
  const { apiKeys, authenticator, allowedOrigins, logger, prefix } =
    options ?? ({} as Partial<HttpApiOptions>);
  const handler = createApiHandler({
    gateway,
    supervisor: gateway.supervisor,
    metrics: gateway.metrics,
    apiKeys: apiKeyVerifier(apiKeys),
    authenticator: authenticator ?? gateway.options.authenticator,
    tickets: gateway.tickets,
    // The gateway keeps no set when any origin is allowed; an empty list is "any" here too.
    allowedOrigins: allowedOrigins ?? [...(gateway.options.allowedOrigins ?? [])],
    limits: gateway.options.limits,
    logger: logger ?? gateway.logger,
  });
  if (prefix === undefined) return handler;
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
    throw new OptionError(
      `option prefix must be a path like "/realtime" (no trailing slash), got ${JSON.stringify(prefix)}`,
    );
  }
  return (req, res, next) => {
    const url = req.url ?? '/';
    const rest = url.slice(prefix.length);
    if (url.startsWith(prefix) && (rest.startsWith('/') || rest.startsWith('?'))) {
      // The API's routes see the path below the prefix, as under Express's `app.use(path, …)`.
      req.url = rest.startsWith('/') ? rest : `/${rest}`;
      return handler(req, res, next && (() => restore(req, url, next)));
    }
    if (next) {
      next();
      return false;
    }
    // Outside the prefix with no app behind: the API's JSON 404, as for any
    // unknown path (not counted by route: no route of the API was asked for).
    sendError(res, new GatewayError('not_found', 'no such route'));
    return true;
  };
}

/** Hands a request the API did not take back to the app with the URL it came with. */
function restore(req: IncomingMessage, url: string, next: () => void): void {
  req.url = url;
  next();
}

function apiKeyVerifier(keys: HttpApiOptions['apiKeys'] | undefined): ApiKeyVerifier {
  if (Array.isArray(keys)) {
    try {
      return new ApiKeys(keys);
    } catch (error) {
      // ApiKeys names the bad key by position and never shows it.
      throw new OptionError(
        `option apiKeys: ${(error as Error).message.replace(/^ApiKeys: /, '')}`,
      );
    }
  }
  if (typeof (keys as ApiKeyVerifier | undefined)?.verifyAuthorizationHeader !== 'function') {
    throw new OptionError(
      'option apiKeys is required: an array of API keys, or an object with verifyAuthorizationHeader(header)',
    );
  }
  return keys as ApiKeyVerifier;
}
