/**
 * User tokens as JWTs (PROTOCOL.md section 1): HS256 with a shared secret, or
 * RS256/ES256/EdDSA with a public key or a JWKS URL, through `jose` (a plain
 * HMAC token's signature is checked by `node:crypto`, its claims still by
 * jose: `hmac-jwt.ts`).
 *
 * Contract of `verify(token)`:
 * - resolves with the token's `sub` and its expiry (exp + leeway, in ms);
 * - a token without `exp` is refused (`missing_claim`) unless `allowNoExp`:
 *   its connection would never expire;
 * - an `iat` later than now + leeway is refused (`issued_in_future`); with
 *   `maxLifetimeSeconds`, so is `exp - iat` past it (`lifetime_too_long`) and
 *   a token without `iat` (`missing_claim`: its lifetime cannot be known);
 * - only the configured key verifies: header parameters that name or carry a
 *   key (`jku`, `x5u`, `jwk`, `x5c`) are never fetched nor used;
 * - rejects with an `AuthError` whose `reason` says why, for every kind of
 *   failure, and whose message never contains the token (nor any claim value);
 * - the header's `alg` is checked against the allow-list before anything else,
 *   so `alg: none` and algorithm confusion (an HMAC token "signed" with the
 *   text of a public key) are refused whatever `jose` would do with them.
 */
import { createPublicKey, webcrypto, type KeyObject } from 'node:crypto';
import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyOptions,
  type ProtectedHeaderParameters,
} from 'jose';
import { isValidUserId, USER_ID_RULE } from '../protocol/user-id.js';
import { AuthError, type UserAuthenticator, type VerifiedUser } from './authenticator.js';
import { createHmacVerifier } from './hmac-jwt.js';

/** The shortest HS256 secret accepted: 256 bits, the size of the HMAC-SHA-256 output (RFC 7518 3.2). */
export const MIN_SECRET_BYTES = 32;

export interface JwtAuthenticatorOptions {
  /** Shared HMAC secret, at least 32 bytes (UTF-8). Allows HS256 unless `algorithms` says otherwise. */
  secret?: string;
  /**
   * PEM SPKI public key (`-----BEGIN PUBLIC KEY-----`): RSA (>= 2048 bits), P-256, P-384, P-521
   * or Ed25519. Allows the key's algorithm (RS256, ES256, ES384, ES512 or EdDSA) unless
   * `algorithms` says otherwise.
   */
  publicKey?: string;
  /**
   * URL of a JSON Web Key Set. Must be `https:`, except on localhost. Allows RS256, ES256 and
   * EdDSA unless `algorithms` says otherwise.
   */
  jwksUrl?: string;
  /** The allow-list of `alg` values. Default: derived from the key, as above. */
  algorithms?: string[];
  /** Required `iss` when set. */
  issuer?: string;
  /** Required `aud` (one of them, for an array) when set. */
  audience?: string | string[];
  /** Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds. Default 5. */
  leewaySeconds?: number;
  /**
   * Accept tokens without `exp` (their connections then never expire). Default false: such a
   * token is refused with `missing_claim`. Cannot be combined with `maxLifetimeSeconds`.
   */
  allowNoExp?: boolean;
  /**
   * Longest lifetime a token may declare, `exp - iat`, in seconds (both claims come from the
   * issuer's clock, so no leeway applies). A longer one is refused with `lifetime_too_long`,
   * one without `iat` with `missing_claim`. Default: no maximum.
   */
  maxLifetimeSeconds?: number;
  /** Longer tokens are refused before any parsing, with `too_long`. Default 8192. */
  maxTokenLength?: number;
  /** JWKS fetch timeout, in ms. Default 5000. */
  jwksTimeoutMs?: number;
  /** A token with an unknown `kid` refetches the JWKS at most once per cooldown, in ms. Default 30000. */
  jwksCooldownMs?: number;
  /** The fetched JWKS is refetched when older than this, in ms. Default 600000 (10 min). */
  jwksCacheMaxAgeMs?: number;
}

export const DEFAULT_LEEWAY_SECONDS = 5;
export const DEFAULT_MAX_TOKEN_LENGTH = 8192;

const HMAC_ALGORITHMS: readonly string[] = ['HS256', 'HS384', 'HS512'];

/** Algorithms per kind of public key: the first one is the default allow-list for that key. */
const KEY_ALGORITHMS = {
  rsa: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'],
  'ec:prime256v1': ['ES256'],
  'ec:secp384r1': ['ES384'],
  'ec:secp521r1': ['ES512'],
  ed25519: ['EdDSA', 'Ed25519'],
} as const satisfies Record<string, readonly string[]>;
type KeyKind = keyof typeof KEY_ALGORITHMS;

const ASYMMETRIC_ALGORITHMS: readonly string[] = Object.values(KEY_ALGORITHMS).flat();
const DEFAULT_JWKS_ALGORITHMS: readonly string[] = ['RS256', 'ES256', 'EdDSA'];
const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]']);

type KeySource = Uint8Array | KeyObject | ReturnType<typeof createRemoteJWKSet>;

/**
 * Creates the JWT authenticator. Options are checked here, with a `TypeError` naming the option.
 *
 * @example
 * const auth = createJwtAuthenticator({ secret: process.env.AGENTSOCKET_JWT_SECRET, issuer: 'https://id.example' });
 * const { userId, expiresAt } = await auth.verify(token);
 */
export function createJwtAuthenticator(options: JwtAuthenticatorOptions): UserAuthenticator {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('options must be an object');
  }
  const sources = [options.secret, options.publicKey, options.jwksUrl].filter(
    (value) => value !== undefined,
  );
  if (sources.length !== 1) {
    throw new TypeError(
      'exactly one of options.secret, options.publicKey, options.jwksUrl is required',
    );
  }
  const leewaySeconds = checkInteger(
    options.leewaySeconds,
    'leewaySeconds',
    DEFAULT_LEEWAY_SECONDS,
    0,
  );
  const maxTokenLength = checkInteger(
    options.maxTokenLength,
    'maxTokenLength',
    DEFAULT_MAX_TOKEN_LENGTH,
    1,
  );
  if (options.allowNoExp !== undefined && typeof options.allowNoExp !== 'boolean') {
    throw new TypeError('options.allowNoExp must be a boolean');
  }
  const allowNoExp = options.allowNoExp ?? false;
  const maxLifetimeSeconds =
    options.maxLifetimeSeconds === undefined
      ? null
      : checkInteger(options.maxLifetimeSeconds, 'maxLifetimeSeconds', 0, 1);
  if (allowNoExp && maxLifetimeSeconds !== null) {
    // A token without exp has no bounded lifetime: the two cannot both hold.
    throw new TypeError('options.allowNoExp and options.maxLifetimeSeconds exclude each other');
  }

  let key: KeySource;
  let allowed: readonly string[];
  let defaults: readonly string[];
  const remote = options.jwksUrl !== undefined;
  if (options.secret !== undefined) {
    key = checkSecret(options.secret);
    allowed = HMAC_ALGORITHMS;
    defaults = ['HS256'];
  } else if (options.publicKey !== undefined) {
    const { keyObject, kind } = checkPublicKey(options.publicKey);
    key = keyObject;
    allowed = KEY_ALGORITHMS[kind];
    defaults = [KEY_ALGORITHMS[kind][0]];
  } else {
    key = createRemoteJWKSet(checkJwksUrl(options.jwksUrl), {
      timeoutDuration: checkInteger(options.jwksTimeoutMs, 'jwksTimeoutMs', 5_000, 1),
      cooldownDuration: checkInteger(options.jwksCooldownMs, 'jwksCooldownMs', 30_000, 0),
      cacheMaxAge: checkInteger(options.jwksCacheMaxAgeMs, 'jwksCacheMaxAgeMs', 600_000, 0),
    });
    allowed = ASYMMETRIC_ALGORITHMS;
    defaults = DEFAULT_JWKS_ALGORITHMS;
  }
  const algorithms = new Set(checkAlgorithms(options.algorithms, allowed, defaults));

  const verifyOptions: JWTVerifyOptions = {
    algorithms: [...algorithms],
    clockTolerance: leewaySeconds,
  };
  if (options.issuer !== undefined) {
    verifyOptions.issuer = checkNonEmptyString(options.issuer, 'issuer');
  }
  if (options.audience !== undefined) verifyOptions.audience = checkAudience(options.audience);

  // An HMAC secret is imported as a CryptoKey once per algorithm: handed to
  // jose as raw bytes it would be imported again on every verify, which was
  // a third of a handshake's cost.
  const hmacKeys = new Map<string, Promise<webcrypto.CryptoKey>>();
  const hmacKeyFor =
    (secret: Uint8Array) =>
    (header: { alg?: string }): Promise<webcrypto.CryptoKey> => {
      const alg = header.alg ?? '';
      let cryptoKey = hmacKeys.get(alg);
      if (cryptoKey === undefined) {
        cryptoKey = webcrypto.subtle.importKey(
          'raw',
          secret,
          { name: 'HMAC', hash: `SHA-${alg.slice(2)}` },
          false,
          ['verify'],
        );
        hmacKeys.set(alg, cryptoKey);
      }
      return cryptoKey;
    };
  const hmacKey = key instanceof Uint8Array ? hmacKeyFor(key) : null;
  // The plain HMAC token is checked synchronously (`hmac-jwt.ts`); the key resolver above
  // stays for the tokens it hands back to jose.
  const hmacVerify = key instanceof Uint8Array ? createHmacVerifier(key, verifyOptions) : null;

  async function verifySignatureAndClaims(
    token: string,
    header: ProtectedHeaderParameters,
  ): Promise<JWTPayload> {
    // Three branches rather than one call: jose's overloads differ by key type.
    // `alg` was checked against the HMAC allow-list before we get here.
    if (hmacVerify) {
      const payload = hmacVerify(token, header);
      if (payload !== null) return payload;
    }
    if (hmacKey) return (await jwtVerify(token, hmacKey, verifyOptions)).payload;
    if (typeof key !== 'function') return (await jwtVerify(token, key, verifyOptions)).payload;
    try {
      return (await jwtVerify(token, key, verifyOptions)).payload;
    } catch (error) {
      if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error;
      // Several keys of the set fit the header (no `kid`): the token is good if one verifies it.
      let last: unknown = error;
      for await (const candidate of error) {
        try {
          return (await jwtVerify(token, candidate, verifyOptions)).payload;
        } catch (candidateError) {
          last = candidateError;
        }
      }
      throw last;
    }
  }

  return {
    async verify(token: string): Promise<VerifiedUser> {
      if (typeof token !== 'string' || token.length === 0) {
        throw new AuthError('missing', 'no token');
      }
      if (token.length > maxTokenLength) {
        throw new AuthError('too_long', `token longer than ${maxTokenLength} characters`);
      }
      let header: ProtectedHeaderParameters;
      try {
        header = decodeProtectedHeader(token);
      } catch {
        throw new AuthError('malformed', 'token is not a JWT');
      }
      const { alg } = header;
      if (typeof alg !== 'string' || !algorithms.has(alg)) {
        throw new AuthError('algorithm_not_allowed', 'token algorithm is not allowed');
      }
      let payload: JWTPayload;
      try {
        payload = await verifySignatureAndClaims(token, header);
      } catch (error) {
        throw toAuthError(error, remote);
      }
      checkLifetime(payload, leewaySeconds, allowNoExp, maxLifetimeSeconds);
      if (!isValidUserId(payload.sub)) {
        throw new AuthError('invalid_subject', `token sub must be ${USER_ID_RULE}`);
      }
      return {
        userId: payload.sub,
        expiresAt: payload.exp === undefined ? null : (payload.exp + leewaySeconds) * 1000,
      };
    },
  };
}

/**
 * The checks on `exp` and `iat` that jose leaves to the caller (it has already refused an
 * expired token, an early `nbf`, and an `exp` or `iat` that is not a number). Seconds are
 * read as jose reads them, so the edges agree.
 */
function checkLifetime(
  payload: JWTPayload,
  leewaySeconds: number,
  allowNoExp: boolean,
  maxLifetimeSeconds: number | null,
): void {
  const { exp, iat } = payload;
  if (exp === undefined && !allowNoExp) {
    throw new AuthError('missing_claim', 'token has no exp claim');
  }
  const now = Math.floor(Date.now() / 1000);
  if (iat !== undefined && iat > now + leewaySeconds) {
    throw new AuthError('issued_in_future', 'token iat is in the future');
  }
  if (maxLifetimeSeconds === null || exp === undefined) return;
  if (iat === undefined) {
    throw new AuthError('missing_claim', 'token has no iat claim; its lifetime is unknown');
  }
  if (exp - iat > maxLifetimeSeconds) {
    throw new AuthError(
      'lifetime_too_long',
      `token lifetime (exp - iat) is over ${maxLifetimeSeconds} seconds`,
    );
  }
}

/**
 * Maps whatever `jose` (or the JWKS fetch) threw to an `AuthError`. The messages are fixed
 * strings: jose's own messages may quote claim values, and nothing of the token leaves here.
 */
function toAuthError(error: unknown, remote: boolean): AuthError {
  if (!(error instanceof errors.JOSEError)) {
    // Outside jose's own errors, only the JWKS fetch throws (network failure, abort).
    return remote
      ? new AuthError('key_unavailable', 'could not fetch the JSON Web Key Set')
      : new AuthError('malformed', 'token could not be verified');
  }
  switch (error.code) {
    case 'ERR_JWT_EXPIRED':
      return new AuthError('expired', 'token expired');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const claim = error instanceof errors.JWTClaimValidationFailed ? error.claim : '';
      if (claim === 'nbf') return new AuthError('not_yet_valid', 'token not yet valid');
      if (claim === 'sub') return new AuthError('invalid_subject', 'token sub is invalid');
      return new AuthError('claim_mismatch', `token claim ${JSON.stringify(claim)} does not match`);
    }
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return new AuthError('bad_signature', 'token signature is invalid');
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return new AuthError('bad_signature', 'no configured key matches the token');
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return new AuthError('algorithm_not_allowed', 'token algorithm is not allowed');
    case 'ERR_JWKS_TIMEOUT':
    case 'ERR_JWKS_INVALID':
    case 'ERR_JWK_INVALID':
      return new AuthError('key_unavailable', 'could not fetch the JSON Web Key Set');
    case 'ERR_JOSE_GENERIC':
      // jose's generic error comes from the JWKS fetch (a non-200 answer).
      return remote
        ? new AuthError('key_unavailable', 'could not fetch the JSON Web Key Set')
        : new AuthError('malformed', 'token is not a valid JWT');
    default:
      // ERR_JWS_INVALID, ERR_JWT_INVALID, ERR_JOSE_NOT_SUPPORTED (e.g. an unknown `crit`), JWE.
      return new AuthError('malformed', 'token is not a valid JWT');
  }
}

function checkInteger(value: unknown, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new TypeError(`options.${name} must be an integer >= ${min}`);
  }
  return value;
}

function checkNonEmptyString(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new TypeError(`options.${name} must be a non-empty string`);
  }
  return value;
}

function checkSecret(secret: unknown): Uint8Array {
  if (typeof secret !== 'string') throw new TypeError('options.secret must be a string');
  if (secret.includes('-----BEGIN')) {
    // A PEM as HMAC secret means anyone holding the (public) key can mint tokens.
    throw new TypeError('options.secret looks like a PEM key; pass it as options.publicKey');
  }
  const bytes = new TextEncoder().encode(secret);
  if (bytes.length < MIN_SECRET_BYTES) {
    throw new TypeError(`options.secret must be at least ${MIN_SECRET_BYTES} bytes`);
  }
  return bytes;
}

function checkPublicKey(pem: unknown): { keyObject: KeyObject; kind: KeyKind } {
  if (typeof pem !== 'string' || !pem.includes('-----BEGIN PUBLIC KEY-----')) {
    throw new TypeError('options.publicKey must be a PEM SPKI public key (BEGIN PUBLIC KEY)');
  }
  let keyObject: KeyObject;
  try {
    keyObject = createPublicKey({ key: pem, format: 'pem' });
  } catch {
    throw new TypeError('options.publicKey could not be parsed as a PEM SPKI public key');
  }
  const type = keyObject.asymmetricKeyType;
  const details = keyObject.asymmetricKeyDetails ?? {};
  const kind = type === 'ec' ? `ec:${details.namedCurve ?? ''}` : (type ?? '');
  if (!Object.hasOwn(KEY_ALGORITHMS, kind)) {
    throw new TypeError('options.publicKey must be an RSA, P-256, P-384, P-521 or Ed25519 key');
  }
  if (kind === 'rsa' && (details.modulusLength ?? 0) < 2048) {
    throw new TypeError('options.publicKey must be an RSA key of at least 2048 bits');
  }
  return { keyObject, kind: kind as KeyKind };
}

function checkJwksUrl(value: unknown): URL {
  let url: URL;
  try {
    url = new URL(checkNonEmptyString(value, 'jwksUrl'));
  } catch {
    throw new TypeError('options.jwksUrl must be an absolute URL');
  }
  const secure =
    url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname));
  if (!secure) {
    throw new TypeError('options.jwksUrl must use https: (http: only on localhost)');
  }
  return url;
}

function checkAlgorithms(
  value: unknown,
  allowed: readonly string[],
  defaults: readonly string[],
): readonly string[] {
  if (value === undefined) return defaults;
  if (!Array.isArray(value) || value.length === 0) {
    throw new TypeError('options.algorithms must be a non-empty array');
  }
  for (const alg of value) {
    if (typeof alg !== 'string' || !allowed.includes(alg)) {
      throw new TypeError(
        `options.algorithms: ${JSON.stringify(alg)} does not fit the configured key (allowed: ${allowed.join(', ')})`,
      );
    }
  }
  return value as string[];
}

function checkAudience(value: unknown): string | string[] {
  if (typeof value === 'string' && value.length > 0) return value;
  if (
    Array.isArray(value) &&
    value.length > 0 &&
    value.every((entry) => typeof entry === 'string' && entry.length > 0)
  ) {
    return value as string[];
  }
  throw new TypeError('options.audience must be a non-empty string or array of them');
}
