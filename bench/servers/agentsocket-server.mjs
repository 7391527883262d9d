/**
 * agentsocket under test: the built package (`dist/`, from `npm run build`)
 * behind the same control surface as the peers. Per-IP limits are lifted
 * because every bench client comes from 127.0.0.1; everything else keeps its
 * defaults (history 1000, 4 MiB send buffer, acks, heartbeats).
 *
 * The engine: `BENCH_ENGINE=memory` (default, the gateway's own MemoryBroker)
 * or `BENCH_ENGINE=redis` with `BENCH_REDIS_URL` (a `RedisBroker` from
 * `dist/redis/index.js` with its defaults; the harness owns that Redis), or
 * `BENCH_ENGINE=redis-cluster` with `BENCH_REDIS_CLUSTER` (seed URLs, comma-separated).
 */
import { createServer } from 'node:http';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { jwtVerify } from 'jose';
import { hostServer, listenLoopback } from './server-host.mjs';

const distIndex = new URL('../../dist/index.js', import.meta.url);
const distJwt = new URL('../../dist/auth/jwt-authenticator.js', import.meta.url);
const distRedis = new URL('../../dist/redis/index.js', import.meta.url);

const BENCH_LIMITS = {
  maxConnections: 1_000_000,
  maxConnectionsPerIp: 1_000_000,
  handshakesPerIpPerSecond: 1_000_000,
};

/**
 * The package's own JWT authenticator when it is built; until it lands, the
 * same HS256 check written here with jose (reported as `bench-jose`).
 */
async function loadAuthenticator(authMode, secret) {
  if (authMode === 'none') {
    return {
      source: 'none (token = user id)',
      authenticator: { verify: async (token) => ({ userId: token, expiresAt: null }) },
    };
  }
  if (existsSync(fileURLToPath(distJwt))) {
    const { createJwtAuthenticator } = await import(distJwt.href);
    return {
      source: 'dist/auth/jwt-authenticator.js',
      authenticator: createJwtAuthenticator({ secret }),
    };
  }
  const key = new TextEncoder().encode(secret);
  return {
    source: 'bench-jose (dist/auth/jwt-authenticator.js not built)',
    authenticator: {
      async verify(token) {
        const { payload } = await jwtVerify(token, key, { algorithms: ['HS256'] });
        return { userId: payload.sub, expiresAt: payload.exp ? payload.exp * 1000 : null };
      },
    },
  };
}

/** The broker to pass to `createGateway`: undefined for the default memory engine. */
async function createBroker(engine, redisUrl, redisCluster) {
  if (engine === 'memory') return undefined;
  if (engine !== 'redis' && engine !== 'redis-cluster') {
    throw new Error(`BENCH_ENGINE: unknown engine ${engine}`);
  }
  if (engine === 'redis' && !redisUrl) throw new Error('BENCH_ENGINE=redis needs BENCH_REDIS_URL');
  if (engine === 'redis-cluster' && !redisCluster) {
    throw new Error('BENCH_ENGINE=redis-cluster needs BENCH_REDIS_CLUSTER');
  }
  if (!existsSync(fileURLToPath(distRedis))) {
    throw new Error('dist/redis/index.js is missing: run `npm run build`');
  }
  const { RedisBroker } = await import(distRedis.href);
  return engine === 'redis'
    ? new RedisBroker({ url: redisUrl })
    : new RedisBroker({ cluster: redisCluster.split(',') });
}

async function createAgentsocketAdapter({ authMode, secret, engine, redisUrl, redisCluster }) {
  if (!existsSync(fileURLToPath(distIndex))) {
    throw new Error('dist/index.js is missing: run `npm run build` (is the gateway core merged?)');
  }
  const { createGateway } = await import(distIndex.href);
  const { source, authenticator } = await loadAuthenticator(authMode, secret);
  const broker = await createBroker(engine, redisUrl, redisCluster);
  const gateway = createGateway({ authenticator, broker, limits: BENCH_LIMITS });
  const httpServer = createServer((_req, res) => res.writeHead(404).end());
  gateway.attach(httpServer);

  return {
    info: { authenticator: source, engine },
    listen: () => listenLoopback(httpServer),
    publish: (userId, data) => gateway.publish(userId, { event: 'token', data, critical: false }),
    publishEvent: (userId, event, runId, data) => gateway.publish(userId, { event, runId, data }),
    broadcast: (data) => gateway.broadcast('bench', data),
    connectionCount: () => gateway.stats().connections,
    close: async () => {
      await gateway.close();
      // A broker passed in is the caller's to close; the default one is the gateway's.
      await broker?.close();
      await new Promise((resolve) => httpServer.close(() => resolve()));
    },
  };
}

await hostServer(
  await createAgentsocketAdapter({
    authMode: process.env.BENCH_AUTH ?? 'jwt',
    secret: process.env.BENCH_JWT_SECRET,
    engine: process.env.BENCH_ENGINE ?? 'memory',
    redisUrl: process.env.BENCH_REDIS_URL,
    redisCluster: process.env.BENCH_REDIS_CLUSTER,
  }),
);
