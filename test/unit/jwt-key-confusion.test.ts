/**
 * Key confusion and key sets: a node configured with a public key or a JWKS
 * verifies with that key only. Header parameters that name or carry a key
 * (`jku`, `x5u`, `jwk`) are never fetched nor used, an HMAC token "signed"
 * with the public key's text is refused, and a JWKS that rotates or goes
 * away behaves as docs/security.md ("Token keys") says. Every JWKS and every
 * attacker's key server is a real HTTP server on 127.0.0.1.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, type JWTPayload } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { AuthError } from '../../src/auth/authenticator.js';
import { createJwtAuthenticator } from '../../src/auth/jwt-authenticator.js';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const attackerRsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const attackerEc = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa2 = generateKeyPairSync('rsa', { modulusLength: 2048 });

const pem = (key: KeyObject): string => key.export({ type: 'spki', format: 'pem' }).toString();
const jwk = (key: KeyObject, kid: string, alg: string): Record<string, unknown> => ({
  ...key.export({ format: 'jwk' }),
  kid,
  alg,
  use: 'sig',
});
const nowSeconds = (): number => Math.floor(Date.now() / 1000);

function claims(): JWTPayload {
  return { sub: 'alice', iat: nowSeconds(), exp: nowSeconds() + 3600 };
}

function sign(
  key: KeyObject | Uint8Array,
  alg: string,
  header: Record<string, unknown> = {},
): Promise<string> {
  return new SignJWT(claims()).setProtectedHeader({ alg, typ: 'JWT', ...header }).sign(key);
}

async function reasonOf(verify: Promise<unknown>): Promise<string> {
  const error = await verify.then(
    () => new Error('expected the token to be refused'),
    (caught: unknown) => caught,
  );
  if (!(error instanceof AuthError)) throw error;
  return error.reason;
}

/** An HTTP server on 127.0.0.1 whose answer the test changes, counting requests. */
interface KeyServer {
  url: string;
  requests: number;
  /** `up`: serve `keys`; `error`: 500; `reset`: drop the connection; `silent`: never answer. */
  mode: 'up' | 'error' | 'reset' | 'silent';
  keys: Record<string, unknown>[];
  close(): Promise<void>;
}

async function startKeyServer(keys: Record<string, unknown>[]): Promise<KeyServer> {
  const state = { requests: 0, mode: 'up' as KeyServer['mode'], keys };
  const server: Server = createServer((req, res) => {
    state.requests++;
    if (state.mode === 'reset') {
      req.socket.destroy();
      return;
    }
    if (state.mode === 'silent') return;
    if (state.mode === 'error') {
      res.writeHead(500);
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  return Object.assign(state, {
    url,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  }) as KeyServer;
}

let attacker: KeyServer;
beforeAll(async () => {
  // The attacker's own key set, which a vulnerable verifier would fetch from `jku`/`x5u`.
  attacker = await startKeyServer([
    jwk(attackerRsa.publicKey, 'evil-rsa', 'RS256'),
    jwk(attackerEc.publicKey, 'evil-ec', 'ES256'),
  ]);
});
afterAll(async () => attacker.close());
afterEach(() => {
  vi.useRealTimers();
});

describe.each([
  ['RS256', rsa, attackerRsa, 'evil-rsa'],
  ['ES256', ec, attackerEc, 'evil-ec'],
] as const)('a node configured with an %s public key', (alg, pair, attackerPair, attackerKid) => {
  const publicPem = pem(pair.publicKey);
  const auth = createJwtAuthenticator({ publicKey: publicPem });

  it('refuses an HS256 token signed with the PEM text or the DER bytes of its key', async () => {
    const viaPem = await sign(new TextEncoder().encode(publicPem), 'HS256');
    expect(await reasonOf(auth.verify(viaPem))).toBe('algorithm_not_allowed');
    const der = new Uint8Array(pair.publicKey.export({ type: 'spki', format: 'der' }));
    expect(await reasonOf(auth.verify(await sign(der, 'HS256')))).toBe('algorithm_not_allowed');
    // Even with the algorithm list spelled out.
    const pinned = createJwtAuthenticator({ publicKey: publicPem, algorithms: [alg] });
    expect(await reasonOf(pinned.verify(viaPem))).toBe('algorithm_not_allowed');
  });

  it('never fetches jku or x5u, and ignores an embedded jwk', async () => {
    const before = attacker.requests;
    const attackerJwk = attackerPair.publicKey.export({ format: 'jwk' });
    const forged = [
      await sign(attackerPair.privateKey, alg, { jku: attacker.url, kid: attackerKid }),
      await sign(attackerPair.privateKey, alg, { x5u: attacker.url, kid: attackerKid }),
      await sign(attackerPair.privateKey, alg, { jwk: attackerJwk }),
    ];
    for (const token of forged) expect(await reasonOf(auth.verify(token))).toBe('bad_signature');
    // The configured key still verifies a good token, whatever such headers say.
    const genuine = await sign(pair.privateKey, alg, { jku: attacker.url, jwk: attackerJwk });
    expect((await auth.verify(genuine)).userId).toBe('alice');
    expect(attacker.requests - before).toBe(0);
  });
});

describe('a node configured with a JWKS URL', () => {
  let jwks: KeyServer;
  beforeAll(async () => {
    jwks = await startKeyServer([
      jwk(rsa.publicKey, 'k1', 'RS256'),
      jwk(ec.publicKey, 'e1', 'ES256'),
    ]);
  });
  afterAll(async () => jwks.close());

  it('refuses a kid not in the set, a jku or jwk pointing elsewhere, and HS256 with a key of the set', async () => {
    const auth = createJwtAuthenticator({ jwksUrl: jwks.url });
    const before = attacker.requests;
    const attackerJwk = attackerRsa.publicKey.export({ format: 'jwk' });
    for (const token of [
      await sign(attackerRsa.privateKey, 'RS256', { kid: 'evil-rsa' }),
      await sign(attackerRsa.privateKey, 'RS256', { kid: 'evil-rsa', jku: attacker.url }),
      await sign(attackerRsa.privateKey, 'RS256', { kid: 'k1', x5u: attacker.url }),
      await sign(attackerRsa.privateKey, 'RS256', { kid: 'k1', jwk: attackerJwk }),
    ]) {
      expect(await reasonOf(auth.verify(token))).toBe('bad_signature');
    }
    const hmac = await sign(new TextEncoder().encode(pem(rsa.publicKey)), 'HS256', { kid: 'k1' });
    expect(await reasonOf(auth.verify(hmac))).toBe('algorithm_not_allowed');
    expect(attacker.requests - before).toBe(0);
    expect((await auth.verify(await sign(rsa.privateKey, 'RS256', { kid: 'k1' }))).userId).toBe(
      'alice',
    );
  });
});

describe('JWKS rotation and outages (Date moved by hand; fetches are real)', () => {
  const COOLDOWN_MS = 30_000;
  const MAX_AGE_MS = 600_000;
  let jwks: KeyServer;
  let clock: number;
  const advance = (ms: number): void => {
    clock += ms;
    vi.setSystemTime(clock);
  };

  beforeAll(async () => {
    jwks = await startKeyServer([]);
  });
  afterAll(async () => jwks.close());

  async function setUp(): Promise<ReturnType<typeof createJwtAuthenticator>> {
    jwks.mode = 'up';
    jwks.keys = [jwk(rsa.publicKey, 'k1', 'RS256')];
    // Only Date is faked: the HTTP fetch and its timeout run on real timers.
    clock = Date.now();
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(clock);
    return createJwtAuthenticator({
      jwksUrl: jwks.url,
      jwksCooldownMs: COOLDOWN_MS,
      jwksCacheMaxAgeMs: MAX_AGE_MS,
      jwksTimeoutMs: 300,
    });
  }

  it('a new key is used once the cooldown since the last fetch is over; a removed key is refused after the next fetch', async () => {
    const auth = await setUp();
    const old = await sign(rsa.privateKey, 'RS256', { kid: 'k1' });
    const fresh = await sign(rsa2.privateKey, 'RS256', { kid: 'k2' });
    const start = jwks.requests;
    expect((await auth.verify(old)).userId).toBe('alice');
    expect(jwks.requests - start).toBe(1);
    // The issuer rotates: k2 appears, k1 disappears.
    jwks.keys = [jwk(rsa2.publicKey, 'k2', 'RS256')];
    // Within the cooldown of the first fetch: k2 is unknown and not fetched yet.
    expect(await reasonOf(auth.verify(fresh))).toBe('bad_signature');
    expect(jwks.requests - start).toBe(1);
    // And k1 is still served from the cached set.
    expect((await auth.verify(old)).userId).toBe('alice');
    advance(COOLDOWN_MS + 1000);
    expect((await auth.verify(fresh)).userId).toBe('alice');
    expect(jwks.requests - start).toBe(2);
    // The refetched set no longer has k1.
    expect(await reasonOf(auth.verify(old))).toBe('bad_signature');
  });

  it('a key removed from the set is accepted from the cache until the set is older than jwksCacheMaxAgeMs', async () => {
    const auth = await setUp();
    const old = await sign(rsa.privateKey, 'RS256', { kid: 'k1' });
    expect((await auth.verify(old)).userId).toBe('alice');
    jwks.keys = [jwk(rsa2.publicKey, 'k2', 'RS256')];
    advance(MAX_AGE_MS - 1000);
    expect((await auth.verify(old)).userId).toBe('alice');
    advance(2000);
    expect(await reasonOf(auth.verify(old))).toBe('bad_signature');
  });

  it('an unreachable JWKS: cached keys serve until the cache expires, then key_unavailable', async () => {
    const auth = await setUp();
    const known = await sign(rsa.privateKey, 'RS256', { kid: 'k1' });
    const unknown = await sign(rsa2.privateKey, 'RS256', { kid: 'k2' });
    // Never fetched: the first verify needs the set.
    jwks.mode = 'reset';
    expect(await reasonOf(auth.verify(known))).toBe('key_unavailable');
    jwks.mode = 'up';
    expect((await auth.verify(known)).userId).toBe('alice');
    for (const mode of ['reset', 'error', 'silent'] as const) {
      jwks.mode = mode;
      // A known kid keeps working from the cache, without a fetch.
      expect((await auth.verify(known)).userId).toBe('alice');
      // An unknown kid after the cooldown triggers a fetch, which fails.
      advance(COOLDOWN_MS + 1000);
      expect(await reasonOf(auth.verify(unknown)), mode).toBe('key_unavailable');
    }
    // Past the cache's age every token needs a fetch: refused until the set is back.
    advance(MAX_AGE_MS);
    jwks.mode = 'error';
    expect(await reasonOf(auth.verify(known))).toBe('key_unavailable');
    jwks.mode = 'up';
    expect((await auth.verify(known)).userId).toBe('alice');
  });
});
