/**
 * API keys of publishers and operators (PROTOCOL.md section 1):
 * `Authorization: Bearer <api-key>`, several keys valid at once for rotation.
 *
 * Contract:
 * - comparison is constant-time: both sides are hashed with SHA-256 (so lengths
 *   never leak) and compared with `timingSafeEqual` against every key, with no
 *   early exit (so which key matched never leaks either);
 * - a user token is never an API key: keys shaped like a JWT (or JWE) are
 *   refused at construction, and a JWT-shaped credential is refused at once;
 * - no key ever appears in an error message.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** The shortest key accepted. */
export const MIN_API_KEY_LENGTH = 16;
/** The longest key accepted; also bounds the work of hashing a presented credential. */
export const MAX_API_KEY_LENGTH = 512;

const BASE64URL_SEGMENT = '[A-Za-z0-9_-]*';
/** Three (JWS) or five (JWE) base64url segments separated by dots. */
const JWT_SHAPE = new RegExp(
  `^${BASE64URL_SEGMENT}(\\.${BASE64URL_SEGMENT}){2}$|^${BASE64URL_SEGMENT}(\\.${BASE64URL_SEGMENT}){4}$`,
);
const BEARER = /^Bearer +(\S+)$/i;

/** True when `value` has the compact serialization shape of a JWT, whatever its content. */
export function looksLikeJwt(value: string): boolean {
  return JWT_SHAPE.test(value);
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * The set of valid API keys.
 *
 * @example
 * const keys = new ApiKeys(process.env.AGENTSOCKET_API_KEYS.split(','));
 * if (!keys.verifyAuthorizationHeader(req.headers.authorization)) reply(401);
 */
export class ApiKeys {
  readonly #digests: readonly Buffer[];

  /**
   * @param keys Every currently valid key (at least one). Each: 16-512 characters, no whitespace,
   *   not shaped like a JWT. Duplicates count once.
   * @throws TypeError naming the position of the first bad key (never the key itself).
   */
  constructor(keys: readonly string[]) {
    if (!Array.isArray(keys) || keys.length === 0) {
      throw new TypeError('ApiKeys: at least one API key is required');
    }
    keys.forEach((key: unknown, index) => {
      if (typeof key !== 'string') throw new TypeError(`ApiKeys: key #${index} must be a string`);
      if (key.length < MIN_API_KEY_LENGTH || key.length > MAX_API_KEY_LENGTH) {
        throw new TypeError(
          `ApiKeys: key #${index} must be ${MIN_API_KEY_LENGTH}-${MAX_API_KEY_LENGTH} characters`,
        );
      }
      if (/\s/.test(key)) throw new TypeError(`ApiKeys: key #${index} must not contain whitespace`);
      if (looksLikeJwt(key)) {
        throw new TypeError(`ApiKeys: key #${index} looks like a JWT; API keys must not`);
      }
    });
    this.#digests = [...new Set(keys)].map(sha256);
  }

  /** How many distinct keys are valid. */
  get size(): number {
    return this.#digests.length;
  }

  /** True if `header` is `Bearer <key>` (scheme case-insensitive) with one of the configured keys. */
  verifyAuthorizationHeader(header: string | undefined): boolean {
    if (typeof header !== 'string') return false;
    const match = BEARER.exec(header);
    const presented = match?.[1];
    if (presented === undefined || presented.length > MAX_API_KEY_LENGTH) return false;
    if (looksLikeJwt(presented)) return false;
    const digest = sha256(presented);
    let matched = false;
    for (const candidate of this.#digests) {
      // Non-short-circuit OR: every key is compared, whichever matches.
      matched = timingSafeEqual(digest, candidate) || matched;
    }
    return matched;
  }

  /** A fresh random key (`ask_` + 32 random bytes, base64url), for development and `agentsocket` setup. */
  static generate(): string {
    return `ask_${randomBytes(32).toString('base64url')}`;
  }
}
