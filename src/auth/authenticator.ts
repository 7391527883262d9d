/**
 * The authentication seam: who a user token belongs to. The gateway takes the
 * user of a connection only from what a `UserAuthenticator` returns.
 *
 * Implementations: `jwt-authenticator.ts` (HS256 secret, RS256/ES256/EdDSA key
 * or JWKS URL). Tests and embedders may pass any function with this shape.
 */

export interface VerifiedUser {
  /** The token's `sub`: 1-128 chars of `[A-Za-z0-9._:@-]`, not only dots (`protocol/user-id.ts`). */
  userId: string;
  /**
   * When the token stops being valid, in ms since the epoch (exp + leeway);
   * null only for a token without `exp` accepted under `allowNoExp`.
   */
  expiresAt: number | null;
}

/** Why a token was refused. Never carries the token itself. */
export type AuthFailureReason =
  | 'missing'
  | 'malformed'
  | 'too_long'
  | 'bad_signature'
  | 'algorithm_not_allowed'
  | 'expired'
  | 'not_yet_valid'
  /** `iat` later than now + leeway: the issuer's clock is wrong, or the token is forged. */
  | 'issued_in_future'
  /** A claim the configuration requires is absent: `exp` (and `iat` under `maxLifetimeSeconds`). */
  | 'missing_claim'
  /** `exp - iat` over `maxLifetimeSeconds`. */
  | 'lifetime_too_long'
  | 'claim_mismatch'
  | 'invalid_subject'
  | 'key_unavailable';

/** A refused token: always answered with 401 (or close 4401), the reason goes to logs and metrics. */
export class AuthError extends Error {
  override readonly name = 'AuthError';
  constructor(
    readonly reason: AuthFailureReason,
    message: string,
  ) {
    super(message);
  }
}

export interface UserAuthenticator {
  /** Verifies a user token. Rejects with `AuthError`; never logs the token. */
  verify(token: string): Promise<VerifiedUser>;
}
