import { decodeJwt, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { mintDevToken } from '../../src/auth/dev-token.js';

const SECRET = 'a-test-secret-of-at-least-32-bytes!!';

describe('mintDevToken', () => {
  it('signs HS256 with sub, iat, exp = iat + ttl and the optional iss and aud', async () => {
    const token = await mintDevToken({
      secret: SECRET,
      userId: 'alice',
      ttlSeconds: 120,
      issuer: 'https://id.test',
      audience: 'agentsocket',
    });
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'HS256', typ: 'JWT' });
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ sub: 'alice', iss: 'https://id.test', aud: 'agentsocket' });
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(120);
  });

  it('defaults to one hour and leaves iss and aud out', async () => {
    const claims = decodeJwt(await mintDevToken({ secret: SECRET, userId: 'bob' }));
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(3600);
    expect(claims).not.toHaveProperty('iss');
    expect(claims).not.toHaveProperty('aud');
  });

  it.each([
    [{ secret: 'short', userId: 'alice' }, 'secret must be a string of at least 32 bytes'],
    [
      { secret: SECRET, userId: 'a b' },
      'userId must be 1-128 characters of [A-Za-z0-9._:@-], not only dots',
    ],
    [{ secret: SECRET, userId: 'alice', ttlSeconds: 0 }, 'ttlSeconds must be a positive integer'],
  ])('refuses %o', async (options, message) => {
    await expect(mintDevToken(options)).rejects.toThrow(new TypeError(message));
  });
});
