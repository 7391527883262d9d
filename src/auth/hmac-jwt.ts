/**
 * The HMAC (HS256/384/512) signature of a compact JWT checked with
 * `node:crypto`, synchronously, and its claims with `jose` (the same
 * `validateClaimsSet` that `jwtVerify` runs, reached through
 * `UnsecuredJWT.decode`).
 *
 * Why: jose verifies through WebCrypto, whose `subtle.verify` is a promise, a
 * thread-pool job and WebIDL argument conversions around a microsecond of
 * HMAC; in the connection-rate profile it was a quarter of a JWT handshake's
 * CPU (docs/performance.md, "Connection rate pass").
 *
 * Only the plain shape takes this path: three non-empty base64url segments,
 * a signature of the algorithm's exact length, a header without `crit` or
 * `b64`. Anything else returns null and goes through `jwtVerify` as before,
 * so every unusual token meets jose's own checks and errors.
 */
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import {
  errors,
  UnsecuredJWT,
  type JWTClaimVerificationOptions,
  type JWTPayload,
  type ProtectedHeaderParameters,
} from 'jose';

/** Per algorithm: the node:crypto hash, and the signature's length in base64url characters. */
const HMAC_SPECS: ReadonlyMap<string, { hash: string; signatureChars: number }> = new Map([
  ['HS256', { hash: 'sha256', signatureChars: 43 }],
  ['HS384', { hash: 'sha384', signatureChars: 64 }],
  ['HS512', { hash: 'sha512', signatureChars: 86 }],
]);

/** Three non-empty segments of base64url characters (ASCII only: the signing input is the text). */
const COMPACT = /^[\w-]+\.[\w-]+\.[\w-]+$/;

/** The header of the unsecured JWT that carries the payload to jose's claim checks. */
const NONE_HEADER = Buffer.from('{"alg":"none"}').toString('base64url');

/**
 * Verifies `token` (whose decoded header is `header`, its `alg` already on
 * the allow-list): returns its payload, or throws jose's error for a bad
 * signature or claim; returns null when the token is not of the plain shape
 * and must go through `jwtVerify`.
 */
export type HmacVerifier = (token: string, header: ProtectedHeaderParameters) => JWTPayload | null;

export function createHmacVerifier(
  secret: Uint8Array,
  claims: JWTClaimVerificationOptions,
): HmacVerifier {
  // Imported once: a raw secret handed to createHmac would be copied into a new key each time.
  const key: KeyObject = createSecretKey(secret);
  return (token, header) => {
    const spec = typeof header.alg === 'string' ? HMAC_SPECS.get(header.alg) : undefined;
    if (spec === undefined || 'crit' in header || 'b64' in header) return null;
    if (!COMPACT.test(token)) return null;
    const signatureAt = token.lastIndexOf('.') + 1;
    if (token.length - signatureAt !== spec.signatureChars) return null;
    const expected = createHmac(spec.hash, key)
      .update(token.slice(0, signatureAt - 1), 'latin1')
      .digest();
    // Decoded as jose decodes it (trailing bits of the last character dropped).
    const given = Buffer.from(token.slice(signatureAt), 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new errors.JWSSignatureVerificationFailed();
    }
    const payload = token.slice(token.indexOf('.') + 1, signatureAt - 1);
    return UnsecuredJWT.decode(`${NONE_HEADER}.${payload}.`, claims).payload;
  };
}
