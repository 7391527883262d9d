/**
 * agentsocket under test: the built package (`dist/`, from `npm run build`)
 * behind the same control surface as the peers. Per-IP limits are lifted
 * because every bench client comes from 127.0.0.1; everything else keeps its
 * defaults (history 1000, 4 MiB send buffer, acks, heartbeats).
 */
import { createServer } from 'node:http';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { jwtVerify } from 'jose';
import { hostServer, listenLoopback } from './server-host.mjs';

const distIndex = new URL('../../dist/index.js', import.meta.url);
const distJwt = new URL('../../dist/auth/jwt-authenticator.js', import.meta.url);

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

async function createAgentsocketAdapter({ authMode, secret }) {
  if (!existsSync(fileURLToPath(distIndex))) {
    throw new Error('dist/index.js is missing: run `npm run build` (is the gateway core merged?)');
  }
  const { createGateway } = await import(distIndex.href);
  const { source, authenticator } = await loadAuthenticator(authMode, secret);
  const gateway = createGateway({ authenticator, limits: BENCH_LIMITS });
  const httpServer = createServer((_req, res) => res.writeHead(404).end());
  gateway.attach(httpServer);

  return {
    info: { authenticator: source },
    listen: () => listenLoopback(httpServer),
    publish: (userId, data) => gateway.publish(userId, { event: 'token', data, critical: false }),
    broadcast: (data) => gateway.broadcast('bench', data),
    connectionCount: () => gateway.stats().connections,
    close: async () => {
      await gateway.close();
      await new Promise((resolve) => httpServer.close(() => resolve()));
    },
  };
}

await hostServer(
  await createAgentsocketAdapter({
    authMode: process.env.BENCH_AUTH ?? 'jwt',
    secret: process.env.BENCH_JWT_SECRET,
  }),
);
