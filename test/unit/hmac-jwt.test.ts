/**
 * The synchronous HMAC path (`src/auth/hmac-jwt.ts`) against jose's own
 * `jwtVerify`: for every token below, the authenticator accepts exactly what
 * jose accepts, and refuses what jose refuses with the reason jose's error
 * maps to. The tokens cover the plain shape (which takes the fast path) and
 * the shapes it hands back to jose (crit, b64, other lengths, stray
 * characters).
 */
import { createHmac } from 'node:crypto';
import { errors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { describe, expect, it } from 'vitest';
import { AuthError } from '../../src/auth/authenticator.js';
import { createJwtAuthenticator } from '../../src/auth/jwt-authenticator.js';

const SECRET = 'a-test-secret-of-at-least-32-bytes!!';
const KEY = new TextEncoder().encode(SECRET);
const ISSUER = 'https://id.test';
const AUDIENCE = 'agentsocket';
const now = (): number => Math.floor(Date.now() / 1000);
const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

function good(extra: JWTPayload = {}): JWTPayload {
  return { sub: 'alice', iss: ISSUER, aud: AUDIENCE, iat: now(), exp: now() + 3600, ...extra };
}

/** A compact JWT signed by hand, so headers jose's signer refuses can be made too. */
function handSigned(header: object, payload: unknown, alg = 'sha256'): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac(alg, KEY).update(input).digest('base64url')}`;
}

const ALGORITHMS = ['HS256', 'HS384', 'HS512'];
const auth = createJwtAuthenticator({
  secret: SECRET,
  issuer: ISSUER,
  audience: AUDIENCE,
  algorithms: ALGORITHMS,
});

/** What jose says of the token: accepted (its sub) or the code of its error. */
async function joseVerdict(token: string): Promise<string> {
  try {
    const { payload } = await jwtVerify(token, KEY, {
      issuer: ISSUER,
      audience: AUDIENCE,
      algorithms: ALGORITHMS,
      clockTolerance: 5,
    });
    return `ok:${String(payload.sub)}`;
  } catch (error) {
    return error instanceof errors.JOSEError ? error.code : 'other';
  }
}

async function ourVerdict(token: string): Promise<string> {
  try {
    return `ok:${(await auth.verify(token)).userId}`;
  } catch (error) {
    return error instanceof AuthError ? error.reason : 'other';
  }
}

/** jose's error codes as the authenticator reports them (`toAuthError`). */
const REASON_OF: Record<string, string> = {
  ERR_JWT_EXPIRED: 'expired',
  ERR_JWS_SIGNATURE_VERIFICATION_FAILED: 'bad_signature',
  ERR_JWS_INVALID: 'malformed',
  ERR_JWT_INVALID: 'malformed',
  ERR_JOSE_NOT_SUPPORTED: 'malformed',
};

async function expectSameVerdict(token: string): Promise<void> {
  const jose = await joseVerdict(token);
  const ours = await ourVerdict(token);
  if (jose.startsWith('ok:')) expect(ours).toBe(jose);
  else if (jose === 'ERR_JWT_CLAIM_VALIDATION_FAILED')
    expect(ours).toMatch(/claim_mismatch|not_yet_valid|invalid_subject/);
  else expect(ours).toBe(REASON_OF[jose] ?? jose);
}

describe('the HMAC path agrees with jose', () => {
  it.each(ALGORITHMS)('accepts a good %s token', async (alg) => {
    const token = await new SignJWT(good()).setProtectedHeader({ alg, typ: 'JWT' }).sign(KEY);
    expect(await ourVerdict(token)).toBe('ok:alice');
    await expectSameVerdict(token);
  });

  it('refuses a changed payload, a changed signature and a signature of another secret', async () => {
    const token = await new SignJWT(good()).setProtectedHeader({ alg: 'HS256' }).sign(KEY);
    const [header, payload, signature = ''] = token.split('.');
    const other = await new SignJWT(good({ sub: 'mallory' }))
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode('another-secret-of-at-least-32-bytes!'));
    const flipped = `${signature.slice(0, 10)}${signature[10] === 'A' ? 'B' : 'A'}${signature.slice(11)}`;
    for (const forged of [
      `${header}.${b64(good({ sub: 'mallory' }))}.${signature}`,
      `${header}.${payload}.${flipped}`,
      `${other.split('.').slice(0, 2).join('.')}.${signature}`,
      other,
    ]) {
      expect(await ourVerdict(forged)).toBe('bad_signature');
      await expectSameVerdict(forged);
    }
  });

  it('agrees on the claims: expired, early, other issuer and audience, not an object', async () => {
    for (const payload of [
      good({ exp: now() - 60 }),
      good({ nbf: now() + 60 }),
      good({ iss: 'https://evil.test' }),
      good({ aud: 'someone-else' }),
      'just a string',
      [1, 2, 3],
    ]) {
      await expectSameVerdict(handSigned({ alg: 'HS256' }, payload));
    }
  });

  it('agrees on the shapes it hands back to jose', async () => {
    const token = handSigned({ alg: 'HS256' }, good());
    const [header, payload, signature = ''] = token.split('.');
    for (const odd of [
      handSigned({ alg: 'HS256', crit: ['exp'], exp: 1 }, good()),
      handSigned({ alg: 'HS256', crit: ['b64'], b64: false }, good()),
      handSigned({ alg: 'HS256', b64: true }, good()),
      `${header}.${payload}.${signature}A`,
      `${header}.${payload}.${signature.slice(0, 42)}`,
      `${header}.${payload}.${signature.slice(0, 41)}+/`,
      `${header}.${payload}==.${signature}`,
      `${header}.${payload}.`,
      `${header}..${signature}`,
    ]) {
      await expectSameVerdict(odd);
    }
  });

  it('decodes the last signature character as jose does (its two spare bits dropped)', async () => {
    const token = handSigned({ alg: 'HS256' }, good());
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(token.slice(-1));
    const sibling = `${token.slice(0, -1)}${alphabet[last ^ 1] ?? ''}`;
    expect(sibling).not.toBe(token);
    await expectSameVerdict(sibling);
  });

  it('refuses an HS512 signature on an HS256 header, and the reverse', async () => {
    const input = `${b64({ alg: 'HS256' })}.${b64(good())}`;
    const long = `${input}.${createHmac('sha512', KEY).update(input).digest('base64url')}`;
    const input512 = `${b64({ alg: 'HS512' })}.${b64(good())}`;
    const short = `${input512}.${createHmac('sha256', KEY).update(input512).digest('base64url')}`;
    for (const token of [long, short]) {
      expect((await ourVerdict(token)).startsWith('ok:')).toBe(false);
      await expectSameVerdict(token);
    }
  });
});
