/**
 * The standalone server: one HTTP server carrying the WebSocket endpoint, the
 * HTTP API, health and metrics, and (with `--dev`) the demo page.
 *
 * Lifecycle, each step logged: `starting` → `listening` (with the bound `url`,
 * parseable by scripts and tests when the port is 0) → on `close()`,
 * `shutting down` → the gateway drains (new handshakes and publishes get 503,
 * `/readyz` answers 503, accepted publishes finish, connections close with
 * 1001) → in-flight HTTP requests finish → `stopped`.
 *
 * Nothing secret is logged: the configuration is logged without the JWT
 * secret, the API keys or the Redis credentials.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { mintDevToken } from '../auth/dev-token.js';
import { createJwtAuthenticator } from '../auth/jwt-authenticator.js';
import { createDemoHandler } from '../demo/demo-routes.js';
import { GatewayError } from '../errors.js';
import { createGateway, type GatewayNode } from '../gateway/gateway.js';
import { refuseHandshake } from '../gateway/refuse-handshake.js';
import { createHttpApi } from '../http/http-api.js';
import { createLogger } from '../observability/logger.js';
import { GatewayMetrics } from '../observability/metrics.js';
import type { TicketStore } from '../auth/ticket-store.js';
import type { Broker } from '../broker/broker.js';
import type { ServerConfig } from './config.js';

export interface StartServerOptions {
  /** Default: a pino logger at `config.logLevel` writing JSON lines to stdout. */
  logger?: Logger;
  /** The demo page's folder. Default: the package's `web/`. */
  webRoot?: string;
  /** The build output served under `/sdk/` by the demo. Default: the package's `dist/`. */
  sdkRoot?: string;
}

export interface RunningServer {
  /** `http://host:port`, with a loopback host when listening on every interface. */
  url: string;
  port: number;
  gateway: GatewayNode;
  /** Drains and stops (see the file comment). Idempotent: later calls get the same promise. */
  close(): Promise<void>;
}

/** Lifetime of the tokens the demo page mints. */
const DEMO_TOKEN_TTL_SECONDS = 3600;

/** A URL a client on this machine can use to reach `address`. */
export function reachableUrl(address: AddressInfo): string {
  const host =
    address.address === '0.0.0.0'
      ? '127.0.0.1'
      : address.address === '::'
        ? '[::1]'
        : address.family === 'IPv6'
          ? `[${address.address}]`
          : address.address;
  return `http://${host}:${address.port}`;
}

/** The Redis URL as logs may show it: no user, no password, no query. */
export function redisForLogs(url: string | null): string | null {
  if (url === null) return null;
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
}

/**
 * Starts a gateway node from a checked configuration.
 *
 * @example
 * const server = await startServer(parseServeConfig(flags, process.env));
 * process.once('SIGTERM', () => void server.close().then(() => process.exit(0)));
 */
export async function startServer(
  config: ServerConfig,
  options: StartServerOptions = {},
): Promise<RunningServer> {
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  logger.info(
    {
      host: config.host,
      port: config.port,
      dev: config.dev,
      engine:
        config.redisCluster.length > 0
          ? 'redis-cluster'
          : config.redisUrl === null
            ? 'memory'
            : 'redis',
      redis: redisForLogs(config.redisUrl),
      redisCluster: config.redisCluster.map((url) => redisForLogs(url)),
      apiKeys: config.apiKeys.length,
      allowedOrigins: config.allowedOrigins.length === 0 ? 'any' : config.allowedOrigins,
      historySize: config.historySize,
      historyTtlMs: config.historyTtlMs,
      runGrammar: config.runGrammar,
      limits: config.limits,
    },
    'starting',
  );

  const metrics = new GatewayMetrics();
  const authenticator = createJwtAuthenticator(config.jwt);
  // The Redis engine (and ioredis with it) is loaded only when asked for.
  let redis: { broker: Broker; tickets: TicketStore & { close(): Promise<void> } } | null = null;
  if (config.redisUrl !== null || config.redisCluster.length > 0) {
    const { RedisBroker, RedisTicketStore } = await import('../redis/index.js');
    const where =
      config.redisUrl !== null ? { url: config.redisUrl } : { cluster: config.redisCluster };
    redis = {
      broker: new RedisBroker({
        ...where,
        historySize: config.historySize,
        historyTtlMs: config.historyTtlMs,
        runTtlMs: config.runTtlMs,
        runSnapshotMaxBytes: config.runSnapshotMaxBytes,
        logger,
      }),
      tickets: new RedisTicketStore(where),
    };
  }
  const gateway = createGateway({
    authenticator,
    ...(redis ? { broker: redis.broker, tickets: redis.tickets } : {}),
    allowedOrigins: config.allowedOrigins,
    trustedProxies: config.trustedProxies,
    heartbeatMs: config.heartbeatMs,
    heartbeatTimeoutMs: config.heartbeatTimeoutMs,
    ackTimeoutMs: config.ackTimeoutMs,
    historySize: config.historySize,
    historyTtlMs: config.historyTtlMs,
    runGrammar: config.runGrammar,
    runTtlMs: config.runTtlMs,
    runSnapshotMaxBytes: config.runSnapshotMaxBytes,
    limits: config.limits,
    logger,
    metrics,
  });
  // `gateway.ready` is not awaited: an engine that is not reachable yet keeps
  // the node unready (`/readyz` 503) rather than keeping it from listening.

  // The API an embedding app mounts (http-api.ts): origins, limits, metrics and
  // logger come from the gateway, so this server and an embedded API cannot differ.
  const apiHandler = createHttpApi(gateway, { apiKeys: config.apiKeys });

  const demoAbort = new AbortController();
  const secret = config.jwt.secret;
  const demoHandler = config.dev
    ? createDemoHandler({
        publish: (userId, input) => gateway.publish(userId, input),
        mintToken: (userId) => {
          if (secret === undefined) throw new Error('the demo mints tokens only with --jwt-secret');
          return mintDevToken({ secret, userId, ttlSeconds: DEMO_TOKEN_TTL_SECONDS });
        },
        webRoot: options.webRoot ?? fileURLToPath(new URL('../../web', import.meta.url)),
        sdkRoot: options.sdkRoot ?? fileURLToPath(new URL('..', import.meta.url)),
        // Only the key --dev generated and printed: a key the operator chose is never shown.
        ...(config.generated.apiKey !== undefined
          ? { publishApiKey: config.generated.apiKey }
          : {}),
        signal: demoAbort.signal,
        onRunError: (error, runId) =>
          logger.warn(
            { runId, err: error instanceof Error ? error.message : String(error) },
            'demo run failed',
          ),
      })
    : null;

  let closing: Promise<void> | null = null;
  let inflight = 0;
  let onIdle: (() => void) | null = null;
  const server = createServer(
    {
      // The handshake deadline of PROTOCOL.md section 2 also bounds plain requests,
      // so a slow sender cannot hold a socket open.
      headersTimeout: config.limits.handshakeTimeoutMs,
      requestTimeout: config.limits.handshakeTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, config.limits.handshakeTimeoutMs),
    },
    (req: IncomingMessage, res: ServerResponse) => {
      inflight++;
      res.on('close', () => {
        inflight--;
        if (inflight === 0) onIdle?.();
      });
      // While draining, no connection is kept for another request.
      if (closing) res.setHeader('Connection', 'close');
      if (demoHandler?.(req, res)) return;
      apiHandler(req, res);
    },
  );
  gateway.attach(server);
  // The gateway answers upgrades on its own path only; any other upgrade would
  // otherwise hold its socket forever.
  server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    if (new URL(req.url ?? '/', 'http://localhost').pathname === gateway.options.path) return;
    metrics.httpRequests.inc({ route: 'unmatched', status: '404' });
    socket.on('error', () => socket.destroy());
    refuseHandshake(socket, new GatewayError('not_found', 'no such route'));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (error) => logger.error({ err: error.message }, 'http server error'));
  const address = server.address() as AddressInfo;
  const url = reachableUrl(address);
  logger.info({ url, port: address.port, node: gateway.nodeId, dev: config.dev }, 'listening');

  const shutdown = async (): Promise<void> => {
    logger.info({ connections: gateway.connectionCount, requests: inflight }, 'shutting down');
    demoAbort.abort();
    // The listener stays open while the gateway drains, so handshakes get a 503
    // rather than a refused connection.
    await gateway.close();
    // An engine passed in is not closed by the gateway.
    if (redis) await Promise.allSettled([redis.broker.close(), redis.tickets.close()]);
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    if (inflight > 0) await new Promise<void>((resolve) => (onIdle = resolve));
    server.closeAllConnections();
    await stopped;
    logger.info('stopped');
  };

  return {
    url,
    port: address.port,
    gateway,
    close: () => (closing ??= shutdown()),
  };
}
