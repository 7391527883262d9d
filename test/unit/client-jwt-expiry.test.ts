import { describe, expect, it } from 'vitest';
import { jwtExpiresAt } from '../../src/client/index.js';

function jwt(payload: unknown): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'HS256', typ: 'JWT' })}.${part(payload)}.c2lnbmF0dXJl`;
}

describe('jwtExpiresAt', () => {
  it('reads exp (seconds) as ms since the epoch, without verifying', () => {
    expect(jwtExpiresAt(jwt({ sub: 'alice', exp: 1_732_470_000 }))).toBe(1_732_470_000_000);
  });

  it('reads payloads whose base64url needs padding and holds non-ASCII text', () => {
    for (const sub of ['a', 'ab', 'abc', 'zoë-日本']) {
      expect(jwtExpiresAt(jwt({ sub, exp: 100 }))).toBe(100_000);
    }
  });

  it('answers null when there is no readable exp', () => {
    expect(jwtExpiresAt(jwt({ sub: 'alice' }))).toBeNull();
    expect(jwtExpiresAt(jwt({ exp: '100' }))).toBeNull();
    expect(jwtExpiresAt(jwt(null))).toBeNull();
    expect(jwtExpiresAt('opaque-token')).toBeNull();
    expect(jwtExpiresAt('a.!!!.c')).toBeNull();
    expect(jwtExpiresAt('a..c')).toBeNull();
  });
});
