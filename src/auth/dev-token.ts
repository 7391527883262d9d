/**
 * HS256 user tokens for development: the `agentsocket token` command and the
 * demo page. Production tokens come from the application's identity provider.
 */
import { SignJWT } from 'jose';
import { isValidUserId, USER_ID_RULE } from '../protocol/user-id.js';
import { MIN_SECRET_BYTES } from './jwt-authenticator.js';

export interface DevTokenOptions {
  /** The gateway's HS256 secret, at least 32 bytes. */
  secret: string;
  /** Becomes `sub`: 1-128 chars of `[A-Za-z0-9._:@-]`, not only dots. */
  userId: string;
  /** Lifetime in seconds. Default 3600. */
  ttlSeconds?: number;
  issuer?: string;
  audience?: string | string[];
}

/**
 * Signs a token the gateway configured with the same `secret` accepts.
 *
 * @example
 * const token = await mintDevToken({ secret, userId: 'alice', ttlSeconds: 600 });
 */
export async function mintDevToken(options: DevTokenOptions): Promise<string> {
  const { secret, userId, ttlSeconds = 3600, issuer, audience } = options;
  if (typeof secret !== 'string' || new TextEncoder().encode(secret).length < MIN_SECRET_BYTES) {
    throw new TypeError(`secret must be a string of at least ${MIN_SECRET_BYTES} bytes`);
  }
  if (!isValidUserId(userId)) {
    throw new TypeError(`userId must be ${USER_ID_RULE}`);
  }
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1) {
    throw new TypeError('ttlSeconds must be a positive integer');
  }
  const now = Math.floor(Date.now() / 1000);
  let jwt = new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(userId)
    .setIssuedAt(now)
    .setExpirationTime(now + ttlSeconds);
  if (issuer !== undefined) jwt = jwt.setIssuer(issuer);
  if (audience !== undefined) jwt = jwt.setAudience(audience);
  return jwt.sign(new TextEncoder().encode(secret));
}
