/**
 * How the peer servers (bare ws, Socket.IO) learn the user of a connection, so
 * that their handshake does the same work as agentsocket's: `jwt` verifies an
 * HS256 JWT with jose and takes `sub`; `none` takes the token as the user id
 * (the "without JWT" variant of the connection-rate scenario).
 */
import { jwtVerify } from 'jose';

export function createTokenVerifier(mode, secret) {
  if (mode === 'none') {
    return async (token) => {
      if (!token) throw new Error('missing token');
      return token;
    };
  }
  if (mode !== 'jwt') throw new Error(`unknown auth mode ${mode}`);
  const key = new TextEncoder().encode(secret);
  return async (token) => {
    const { payload } = await jwtVerify(token, key, { algorithms: ['HS256'] });
    if (typeof payload.sub !== 'string' || payload.sub.length === 0) throw new Error('no sub');
    return payload.sub;
  };
}

/** The bearer token of an `Authorization` header, or ''. */
export function bearerToken(header) {
  return typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7) : '';
}
