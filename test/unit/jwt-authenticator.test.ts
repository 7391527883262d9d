import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, type JWTPayload } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { AuthError, type AuthFailureReason } from '../../src/auth/authenticator.js';
import { mintDevToken } from '../../src/auth/dev-token.js';
import { createJwtAuthenticator } from '../../src/auth/jwt-authenticator.js';

const SECRET = 'a-test-secret-of-at-least-32-bytes!!';
const ISSUER = 'https://id.test';
const AUDIENCE = 'agentsocket';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const otherRsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ed = generateKeyPairSync('ed25519');
const pem = (key: KeyObject): string => key.export({ type: 'spki', format: 'pem' }).toString();
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const nowSeconds = (): number => Math.floor(Date.now() / 1000);
const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

async function sign(
  payload: JWTPayload,
  key: KeyObject | Uint8Array,
  alg: string,
  header: Record<string, string> = {},
): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg, typ: 'JWT', ...header }).sign(key);
}

/** A payload every authenticator below accepts, valid for an hour. */
function good(extra: JWTPayload = {}): JWTPayload {
  return {
    sub: 'alice',
    iss: ISSUER,
    aud: AUDIENCE,
    iat: nowSeconds(),
    exp: nowSeconds() + 3600,
    ...extra,
  };
}

/**
 * Awaits a refusal and checks, for every refused token of this file, that nothing the error
 * carries quotes the token or any long part of it (a signature alone is a secret too).
 */
async function refusal(verify: Promise<unknown>, token: string): Promise<AuthError> {
  const error = await verify.then(
    () => {
      throw new Error('expected the token to be refused');
    },
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(AuthError);
  const authError = error as AuthError;
  for (const text of [authError.message, String(authError.stack), JSON.stringify(authError)]) {
    if (token.length > 0) expect(text).not.toContain(token);
    for (const part of token.split('.').filter((segment) => segment.length >= 8)) {
      expect(text).not.toContain(part);
    }
  }
  return authError;
}

const hs = createJwtAuthenticator({ secret: SECRET, issuer: ISSUER, audience: AUDIENCE });

async function expectRefused(token: string, reason: AuthFailureReason): Promise<void> {
  expect((await refusal(hs.verify(token), token)).reason).toBe(reason);
}

// A JWKS served over real HTTP on loopback.
let jwksServer: Server;
let jwksUrl: string;
let jwksRequests = 0;
const jwks = {
  keys: [
    { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
    { ...ec.publicKey.export({ format: 'jwk' }), kid: 'ec-1', alg: 'ES256', use: 'sig' },
  ],
};

beforeAll(async () => {
  jwksServer = createServer((req, res) => {
    jwksRequests++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(jwks));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => jwksServer.close(() => resolve()));
});

describe('createJwtAuthenticator: accepted tokens', () => {
  it('accepts HS256 and returns sub and exp + leeway in ms', async () => {
    const exp = nowSeconds() + 600;
    const user = await hs.verify(await sign(good({ exp }), bytes(SECRET), 'HS256'));
    expect(user).toEqual({ userId: 'alice', expiresAt: (exp + 5) * 1000 });
  });

  it('returns expiresAt null for a token without exp only under allowNoExp', async () => {
    const payload = good();
    delete payload.exp;
    const token = await sign(payload, bytes(SECRET), 'HS256');
    const lax = createJwtAuthenticator({
      secret: SECRET,
      issuer: ISSUER,
      audience: AUDIENCE,
      allowNoExp: true,
    });
    expect(await lax.verify(token)).toEqual({ userId: 'alice', expiresAt: null });
    // The default refuses it: its connection would never expire.
    const error = await refusal(hs.verify(token), token);
    expect({ reason: error.reason, message: error.message }).toEqual({
      reason: 'missing_claim',
      message: 'token has no exp claim',
    });
  });

  it('uses the configured leeway in expiresAt', async () => {
    const auth = createJwtAuthenticator({ secret: SECRET, leewaySeconds: 0 });
    const exp = nowSeconds() + 600;
    const user = await auth.verify(await sign({ sub: 'bob', exp }, bytes(SECRET), 'HS256'));
    expect(user.expiresAt).toBe(exp * 1000);
  });

  it.each([
    ['RS256', rsa],
    ['ES256', ec],
    ['EdDSA', ed],
  ] as const)('accepts %s with the matching public key', async (alg, pair) => {
    const auth = createJwtAuthenticator({ publicKey: pem(pair.publicKey), issuer: ISSUER });
    const token = await sign(good({ sub: `user:${alg}` }), pair.privateKey, alg);
    expect((await auth.verify(token)).userId).toBe(`user:${alg}`);
  });

  it('accepts the mixed-case, punctuated ids of the protocol and a 128-char sub', async () => {
    for (const sub of ['a', 'Alice.B_c-d:e@f', 'x'.repeat(128)]) {
      expect((await hs.verify(await sign(good({ sub }), bytes(SECRET), 'HS256'))).userId).toBe(sub);
    }
  });

  it('accepts RS256 and ES256 tokens through a JWKS, matched by kid', async () => {
    const auth = createJwtAuthenticator({ jwksUrl });
    const viaRsa = await sign(good(), rsa.privateKey, 'RS256', { kid: 'rsa-1' });
    const viaEc = await sign(good({ sub: 'bob' }), ec.privateKey, 'ES256', { kid: 'ec-1' });
    expect((await auth.verify(viaRsa)).userId).toBe('alice');
    expect((await auth.verify(viaEc)).userId).toBe('bob');
  });

  it('accepts a mint from mintDevToken with the same secret, issuer and audience', async () => {
    const token = await mintDevToken({
      secret: SECRET,
      userId: 'dev-user',
      ttlSeconds: 60,
      issuer: ISSUER,
      audience: AUDIENCE,
    });
    const user = await hs.verify(token);
    expect(user.userId).toBe('dev-user');
    const expiresAt = user.expiresAt ?? 0;
    expect(expiresAt).toBeGreaterThan(Date.now() + 55_000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 66_000);
  });
});

describe('createJwtAuthenticator: refused tokens', () => {
  it('refuses alg none (hand-built, empty signature)', async () => {
    const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(good())}.`;
    await expectRefused(token, 'algorithm_not_allowed');
  });

  it('refuses an HS256 token signed with the RSA public key text (algorithm confusion)', async () => {
    const rsaPem = pem(rsa.publicKey);
    const auth = createJwtAuthenticator({ publicKey: rsaPem });
    const token = await sign(good(), bytes(rsaPem), 'HS256');
    expect((await refusal(auth.verify(token), token)).reason).toBe('algorithm_not_allowed');
    // The same attack with the DER bytes of the key, and with a kid, against the JWKS.
    const der = new Uint8Array(rsa.publicKey.export({ type: 'spki', format: 'der' }));
    const viaJwks = await sign(good(), der, 'HS256', { kid: 'rsa-1' });
    const remote = createJwtAuthenticator({ jwksUrl });
    expect((await refusal(remote.verify(viaJwks), viaJwks)).reason).toBe('algorithm_not_allowed');
  });

  it('refuses an algorithm outside the allow-list even with a valid signature', async () => {
    const token = await sign(good(), bytes(SECRET), 'HS512');
    await expectRefused(token, 'algorithm_not_allowed');
    const widened = createJwtAuthenticator({ secret: SECRET, algorithms: ['HS256', 'HS512'] });
    expect((await widened.verify(token)).userId).toBe('alice');
  });

  it('refuses a token signed with another secret', async () => {
    await expectRefused(await sign(good(), bytes(`${SECRET}-other`), 'HS256'), 'bad_signature');
  });

  it('refuses a token signed with another key', async () => {
    const auth = createJwtAuthenticator({ publicKey: pem(rsa.publicKey) });
    const token = await sign(good(), otherRsa.privateKey, 'RS256');
    expect((await refusal(auth.verify(token), token)).reason).toBe('bad_signature');
  });

  it('refuses an unknown kid against a JWKS, refetching it at most once per cooldown', async () => {
    const auth = createJwtAuthenticator({ jwksUrl });
    const before = jwksRequests;
    const unknownKid = await sign(good(), rsa.privateKey, 'RS256', { kid: 'rsa-2' });
    expect((await refusal(auth.verify(unknownKid), unknownKid)).reason).toBe('bad_signature');
    expect((await refusal(auth.verify(unknownKid), unknownKid)).reason).toBe('bad_signature');
    expect(jwksRequests - before).toBe(1);
    // A known kid, signed by a key that is not that kid's.
    const wrongKey = await sign(good(), otherRsa.privateKey, 'RS256', { kid: 'rsa-1' });
    expect((await refusal(auth.verify(wrongKey), wrongKey)).reason).toBe('bad_signature');
  });

  it('tries every key of a JWKS whose keys have no kid', async () => {
    const anonymous = { keys: jwks.keys.map(({ kid: _kid, ...key }) => key) };
    anonymous.keys.push({
      ...otherRsa.publicKey.export({ format: 'jwk' }),
      alg: 'RS256',
      use: 'sig',
    });
    const server = createServer((_req, res) => res.end(JSON.stringify(anonymous)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const auth = createJwtAuthenticator({ jwksUrl: `http://127.0.0.1:${port}/` });
      const bySecond = await sign(good({ sub: 'second' }), otherRsa.privateKey, 'RS256');
      expect((await auth.verify(bySecond)).userId).toBe('second');
      const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const byStranger = await sign(good(), stranger.privateKey, 'RS256');
      expect((await refusal(auth.verify(byStranger), byStranger)).reason).toBe('bad_signature');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('reports key_unavailable when the JWKS answers 500 or nothing listens', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(500);
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const token = await sign(good(), rsa.privateKey, 'RS256', { kid: 'rsa-1' });
    const failing = createJwtAuthenticator({ jwksUrl: `http://127.0.0.1:${port}/` });
    expect((await refusal(failing.verify(token), token)).reason).toBe('key_unavailable');
    await new Promise<void>((resolve) => server.close(() => resolve()));
    // The port is free now: the fetch is refused at the TCP level.
    const closed = createJwtAuthenticator({ jwksUrl: `http://127.0.0.1:${port}/` });
    expect((await refusal(closed.verify(token), token)).reason).toBe('key_unavailable');
  });

  it('refuses truncated tokens', async () => {
    const token = await sign(good(), bytes(SECRET), 'HS256');
    const [header, payload, signature = ''] = token.split('.');
    await expectRefused(`${header}.${payload}.${signature.slice(0, 20)}`, 'bad_signature');
    await expectRefused(`${header}.${payload}`, 'malformed');
    await expectRefused(`${header}.${payload?.slice(0, 10)}.${signature}`, 'bad_signature');
    await expectRefused(token.slice(0, 12), 'malformed');
  });

  it.each([
    ['plain text', 'not a token'],
    ['dots only', '..'],
    ['non-JSON segments', 'abc.def.ghi'],
    ['a header that is not an object', `${b64('HS256')}.${b64(good())}.sig`],
    ['a JWE-shaped string', 'a.b.c.d.e'],
  ])('refuses garbage: %s', async (_name, token) => {
    await expectRefused(token, 'malformed');
  });

  it('refuses a missing token', async () => {
    await expectRefused('', 'missing');
  });

  it('refuses an expired token and one not yet valid', async () => {
    await expectRefused(
      await sign(good({ exp: nowSeconds() - 60 }), bytes(SECRET), 'HS256'),
      'expired',
    );
    await expectRefused(
      await sign(good({ nbf: nowSeconds() + 60 }), bytes(SECRET), 'HS256'),
      'not_yet_valid',
    );
  });

  it.each([
    ['another issuer', { iss: 'https://evil.test' }],
    ['no issuer', { iss: undefined }],
    ['another audience', { aud: 'someone-else' }],
    ['no audience', { aud: undefined }],
  ])('refuses %s with claim_mismatch', async (_name, extra) => {
    await expectRefused(await sign(good(extra), bytes(SECRET), 'HS256'), 'claim_mismatch');
  });

  it('accepts any of several configured audiences, in a string or an array aud', async () => {
    const auth = createJwtAuthenticator({ secret: SECRET, audience: ['a', 'b'] });
    const exp = nowSeconds() + 600;
    expect(
      (await auth.verify(await sign({ sub: 'x', aud: 'b', exp }, bytes(SECRET), 'HS256'))).userId,
    ).toBe('x');
    const both = await sign({ sub: 'y', aud: ['c', 'a'], exp }, bytes(SECRET), 'HS256');
    expect((await auth.verify(both)).userId).toBe('y');
    const neither = await sign({ sub: 'z', aud: ['c'], exp }, bytes(SECRET), 'HS256');
    expect((await refusal(auth.verify(neither), neither)).reason).toBe('claim_mismatch');
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['with a space', 'alice bob'],
    ['with a slash', 'a/b'],
    ['non-ASCII', 'alicé'],
    ['129 chars', 'x'.repeat(129)],
    ['a number', 42],
  ])('refuses a sub %s with invalid_subject', async (_name, sub) => {
    await expectRefused(
      await sign(good({ sub: sub as string | undefined }), bytes(SECRET), 'HS256'),
      'invalid_subject',
    );
  });

  it('refuses a token longer than maxTokenLength before parsing it', async () => {
    const token = await sign(good(), bytes(SECRET), 'HS256');
    const exact = createJwtAuthenticator({ secret: SECRET, maxTokenLength: token.length });
    expect((await exact.verify(token)).userId).toBe('alice');
    const shorter = createJwtAuthenticator({ secret: SECRET, maxTokenLength: token.length - 1 });
    expect((await refusal(shorter.verify(token), token)).reason).toBe('too_long');
    // The default bound, 8192, with a validly signed token.
    const big = await sign(good({ pad: 'p'.repeat(9000) }), bytes(SECRET), 'HS256');
    await expectRefused(big, 'too_long');
  });
});

describe('createJwtAuthenticator: leeway edges (Date frozen)', () => {
  // Date is frozen, so exact one-second edges cannot flake: jose reads the clock through Date.
  const frozen = Date.UTC(2030, 0, 1, 12, 0, 0);
  const t = frozen / 1000;
  const auth = createJwtAuthenticator({ secret: SECRET });
  const token = (claims: JWTPayload): Promise<string> =>
    sign({ sub: 'alice', exp: t + 3600, ...claims }, bytes(SECRET), 'HS256');

  afterEach(() => {
    vi.useRealTimers();
  });

  it('accepts exp at now - leeway + 1 s, refuses it at now - leeway and now - leeway - 1 s', async () => {
    const [inside, edge, outside] = await Promise.all([
      token({ exp: t - 5 + 1 }),
      token({ exp: t - 5 }),
      token({ exp: t - 5 - 1 }),
    ]);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(frozen);
    expect(await auth.verify(inside)).toEqual({ userId: 'alice', expiresAt: (t + 1) * 1000 });
    expect((await refusal(auth.verify(edge), edge)).reason).toBe('expired');
    expect((await refusal(auth.verify(outside), outside)).reason).toBe('expired');
  });

  it('accepts nbf at now + leeway, refuses it at now + leeway + 1 s', async () => {
    const [inside, outside] = await Promise.all([token({ nbf: t + 5 }), token({ nbf: t + 5 + 1 })]);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(frozen);
    expect((await auth.verify(inside)).userId).toBe('alice');
    expect((await refusal(auth.verify(outside), outside)).reason).toBe('not_yet_valid');
  });

  it('accepts iat at now + leeway, refuses it at now + leeway + 1 s', async () => {
    const [inside, outside] = await Promise.all([token({ iat: t + 5 }), token({ iat: t + 5 + 1 })]);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(frozen);
    expect((await auth.verify(inside)).userId).toBe('alice');
    const error = await refusal(auth.verify(outside), outside);
    expect({ reason: error.reason, message: error.message }).toEqual({
      reason: 'issued_in_future',
      message: 'token iat is in the future',
    });
  });

  it('with maxLifetimeSeconds, accepts exp - iat at the maximum, refuses a second more or no iat', async () => {
    const bounded = createJwtAuthenticator({ secret: SECRET, maxLifetimeSeconds: 3600 });
    const [exact, longer, noIat, old] = await Promise.all([
      token({ iat: t - 10, exp: t - 10 + 3600 }),
      token({ iat: t - 10, exp: t - 10 + 3601 }),
      token({ exp: t + 60 }),
      // Issued long ago with a short life: only exp - iat counts, not the age.
      token({ iat: t - 86_400, exp: t + 60 }),
    ]);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(frozen);
    expect((await bounded.verify(exact)).userId).toBe('alice');
    const tooLong = await refusal(bounded.verify(longer), longer);
    expect({ reason: tooLong.reason, message: tooLong.message }).toEqual({
      reason: 'lifetime_too_long',
      message: 'token lifetime (exp - iat) is over 3600 seconds',
    });
    expect((await refusal(bounded.verify(noIat), noIat)).reason).toBe('missing_claim');
    expect((await refusal(bounded.verify(old), old)).reason).toBe('lifetime_too_long');
    // Without the option, lifetimes are not bounded.
    expect((await auth.verify(longer)).userId).toBe('alice');
    expect((await auth.verify(noIat)).userId).toBe('alice');
  });

  it('holds the same edges on the real clock with margins of several seconds', async () => {
    // Real-clock variant: 4 s either side of the leeway, so a slow run cannot cross an edge.
    const wide = createJwtAuthenticator({ secret: SECRET, leewaySeconds: 30 });
    const now = nowSeconds();
    expect((await wide.verify(await token({ exp: now - 30 + 4 }))).userId).toBe('alice');
    const late = await token({ exp: now - 30 - 4 });
    expect((await refusal(wide.verify(late), late)).reason).toBe('expired');
    expect((await wide.verify(await token({ nbf: now + 30 - 4 }))).userId).toBe('alice');
    const early = await token({ nbf: now + 30 + 4 });
    expect((await refusal(wide.verify(early), early)).reason).toBe('not_yet_valid');
  });
});

describe('createJwtAuthenticator: options', () => {
  const rsaPem = pem(rsa.publicKey);
  it.each([
    [
      'nothing',
      {},
      'exactly one of options.secret, options.publicKey, options.jwksUrl is required',
    ],
    [
      'two sources',
      { secret: SECRET, publicKey: rsaPem },
      'exactly one of options.secret, options.publicKey, options.jwksUrl is required',
    ],
    ['a 31-byte secret', { secret: 's'.repeat(31) }, 'options.secret must be at least 32 bytes'],
    [
      'a PEM as secret',
      { secret: rsaPem },
      'options.secret looks like a PEM key; pass it as options.publicKey',
    ],
    [
      'a private key as public key',
      { publicKey: rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() },
      'options.publicKey must be a PEM SPKI public key (BEGIN PUBLIC KEY)',
    ],
    [
      'a broken PEM',
      { publicKey: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n' },
      'options.publicKey could not be parsed as a PEM SPKI public key',
    ],
    [
      'a 1024-bit RSA key',
      { publicKey: pem(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey) },
      'options.publicKey must be an RSA key of at least 2048 bits',
    ],
    [
      'an Ed448 key',
      { publicKey: pem(generateKeyPairSync('ed448').publicKey) },
      'options.publicKey must be an RSA, P-256, P-384, P-521 or Ed25519 key',
    ],
    [
      'HS256 allowed with a public key',
      { publicKey: rsaPem, algorithms: ['RS256', 'HS256'] },
      'options.algorithms: "HS256" does not fit the configured key (allowed: RS256, RS384, RS512, PS256, PS384, PS512)',
    ],
    [
      'ES384 with a P-256 key',
      { publicKey: pem(ec.publicKey), algorithms: ['ES384'] },
      'options.algorithms: "ES384" does not fit the configured key (allowed: ES256)',
    ],
    [
      'RS256 with a secret',
      { secret: SECRET, algorithms: ['RS256'] },
      'options.algorithms: "RS256" does not fit the configured key (allowed: HS256, HS384, HS512)',
    ],
    [
      'none',
      { secret: SECRET, algorithms: ['none'] },
      'options.algorithms: "none" does not fit the configured key (allowed: HS256, HS384, HS512)',
    ],
    [
      'an empty allow-list',
      { secret: SECRET, algorithms: [] },
      'options.algorithms must be a non-empty array',
    ],
    ['a relative JWKS URL', { jwksUrl: '/jwks.json' }, 'options.jwksUrl must be an absolute URL'],
    [
      'a plain-http JWKS URL off localhost',
      { jwksUrl: 'http://id.example/jwks.json' },
      'options.jwksUrl must use https: (http: only on localhost)',
    ],
    [
      'a negative leeway',
      { secret: SECRET, leewaySeconds: -1 },
      'options.leewaySeconds must be an integer >= 0',
    ],
    [
      'a zero maxTokenLength',
      { secret: SECRET, maxTokenLength: 0 },
      'options.maxTokenLength must be an integer >= 1',
    ],
    [
      'a non-boolean allowNoExp',
      { secret: SECRET, allowNoExp: 'yes' as unknown as boolean },
      'options.allowNoExp must be a boolean',
    ],
    [
      'a zero maxLifetimeSeconds',
      { secret: SECRET, maxLifetimeSeconds: 0 },
      'options.maxLifetimeSeconds must be an integer >= 1',
    ],
    [
      'allowNoExp with maxLifetimeSeconds',
      { secret: SECRET, allowNoExp: true, maxLifetimeSeconds: 60 },
      'options.allowNoExp and options.maxLifetimeSeconds exclude each other',
    ],
    [
      'an empty issuer',
      { secret: SECRET, issuer: '' },
      'options.issuer must be a non-empty string',
    ],
    [
      'an empty audience',
      { secret: SECRET, audience: [] },
      'options.audience must be a non-empty string or array of them',
    ],
  ])('refuses %s', (_name, options, message) => {
    expect(() => createJwtAuthenticator(options)).toThrow(new TypeError(message));
  });

  it('counts secret length in UTF-8 bytes and accepts https and localhost JWKS URLs', () => {
    expect(() => createJwtAuthenticator({ secret: 'é'.repeat(16) })).not.toThrow();
    expect(() => createJwtAuthenticator({ secret: 'é'.repeat(15) })).toThrow(TypeError);
    expect(() => createJwtAuthenticator({ jwksUrl: 'https://id.example/jwks' })).not.toThrow();
    expect(() => createJwtAuthenticator({ jwksUrl: 'http://localhost:9/jwks' })).not.toThrow();
  });
});
