import { generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { ApiKeys, looksLikeJwt } from '../../src/auth/api-keys.js';
import { mintDevToken } from '../../src/auth/dev-token.js';

const CURRENT = 'ask_current-key-0123456789';
const NEXT = 'ask_next-key-abcdefghijkl';

describe('ApiKeys', () => {
  const keys = new ApiKeys([CURRENT, NEXT]);

  it('accepts each configured key (rotation), with the scheme in any case', () => {
    expect(keys.verifyAuthorizationHeader(`Bearer ${CURRENT}`)).toBe(true);
    expect(keys.verifyAuthorizationHeader(`Bearer ${NEXT}`)).toBe(true);
    expect(keys.verifyAuthorizationHeader(`bearer ${NEXT}`)).toBe(true);
    expect(keys.size).toBe(2);
  });

  it.each([
    ['an unknown key', 'Bearer ask_unknown-key-0123456789'],
    ['a prefix of a key', `Bearer ${CURRENT.slice(0, -1)}`],
    ['a key with a suffix', `Bearer ${CURRENT}x`],
    ['a key in another case', `Bearer ${CURRENT.toUpperCase()}`],
    ['the Basic scheme', `Basic ${CURRENT}`],
    ['no scheme', CURRENT],
    ['a scheme without key', 'Bearer '],
    ['two credentials', `Bearer ${CURRENT} ${NEXT}`],
    ['an empty header', ''],
    ['an overlong credential', `Bearer ${CURRENT}${'x'.repeat(600)}`],
  ])('refuses %s', (_name, header) => {
    expect(keys.verifyAuthorizationHeader(header)).toBe(false);
  });

  it('refuses a missing header', () => {
    expect(keys.verifyAuthorizationHeader(undefined)).toBe(false);
  });

  it.each([
    ['no keys', [], 'ApiKeys: at least one API key is required'],
    ['a short key', [CURRENT, 'short-key-15chr'], 'ApiKeys: key #1 must be 16-512 characters'],
    ['an overlong key', ['k'.repeat(513)], 'ApiKeys: key #0 must be 16-512 characters'],
    [
      'a key with whitespace',
      ['has a space in it!!'],
      'ApiKeys: key #0 must not contain whitespace',
    ],
    [
      'a JWT-shaped key',
      ['eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl'],
      'ApiKeys: key #0 looks like a JWT; API keys must not',
    ],
    [
      'an alg-none-shaped key (empty third segment)',
      [CURRENT, 'aaaaaaaaaa.bbbbbbbbbb.'],
      'ApiKeys: key #1 looks like a JWT; API keys must not',
    ],
    [
      'a JWE-shaped key',
      ['aaaaa.bbbbb.ccccc.ddddd.eeeee'],
      'ApiKeys: key #0 looks like a JWT; API keys must not',
    ],
  ])('refuses at construction %s', (_name, list, message) => {
    expect(() => new ApiKeys(list)).toThrow(new TypeError(message));
  });

  it('never names a key in a construction error', () => {
    const secret = 'a secret key with spaces';
    expect(() => new ApiKeys([secret])).toThrow(TypeError);
    try {
      new ApiKeys([secret]);
    } catch (error) {
      expect(String((error as Error).message)).not.toContain(secret);
    }
  });

  it('never accepts a valid user JWT, whatever the keys', async () => {
    const secret = 'a-test-secret-of-at-least-32-bytes!!';
    const hs = await mintDevToken({ secret, userId: 'alice' });
    const { privateKey } = generateKeyPairSync('ed25519');
    const ed = await new SignJWT({ sub: 'alice' })
      .setProtectedHeader({ alg: 'EdDSA' })
      .sign(privateKey);
    for (const token of [hs, ed]) {
      expect(looksLikeJwt(token)).toBe(true);
      // Not even when someone configured the JWT's secret as an API key.
      expect(new ApiKeys([CURRENT, secret]).verifyAuthorizationHeader(`Bearer ${token}`)).toBe(
        false,
      );
      expect(() => new ApiKeys([token])).toThrow(
        new TypeError('ApiKeys: key #0 looks like a JWT; API keys must not'),
      );
    }
  });

  it('counts a repeated key once', () => {
    const twice = new ApiKeys([CURRENT, CURRENT, NEXT]);
    expect(twice.size).toBe(2);
    expect(twice.verifyAuthorizationHeader(`Bearer ${CURRENT}`)).toBe(true);
  });

  it('generates distinct keys that it accepts', () => {
    const generated = Array.from({ length: 50 }, () => ApiKeys.generate());
    expect(new Set(generated).size).toBe(50);
    for (const key of generated) {
      expect(key).toMatch(/^ask_[A-Za-z0-9_-]{43}$/);
      expect(looksLikeJwt(key)).toBe(false);
    }
    const set = new ApiKeys(generated);
    expect(generated.every((key) => set.verifyAuthorizationHeader(`Bearer ${key}`))).toBe(true);
  });
});
