/**
 * The user token of the routes a browser calls (`Authorization: Bearer <jwt>`).
 * An API key in its place is refused like any token that does not verify.
 */
import type { IncomingMessage } from 'node:http';
import type { UserAuthenticator, VerifiedUser } from '../auth/authenticator.js';
import { GatewayError } from '../errors.js';

const BEARER = /^Bearer +(\S+)$/i;

/** Verifies the request's bearer token as a user token; 401 when missing or refused. */
export async function verifyUserBearer(
  req: IncomingMessage,
  authenticator: UserAuthenticator,
): Promise<VerifiedUser> {
  const match = BEARER.exec(req.headers.authorization ?? '');
  if (!match) {
    throw new GatewayError('unauthorized', 'a user token is required: Authorization: Bearer <jwt>');
  }
  return authenticator.verify(match[1] as string);
}
