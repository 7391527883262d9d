import { describe, expect, it } from 'vitest';
import { Router, type RouteHandler } from '../../src/http/router.js';

const noop: RouteHandler = () => undefined;

describe('Router', () => {
  const router = new Router()
    .on('GET', '/healthz', noop)
    .on('POST', '/v1/users/{userId}/events', noop)
    .on('GET', '/v1/users/{userId}/connections', noop)
    .on('DELETE', '/v1/users/{userId}/connections', noop);

  it('matches literal paths and names the template', () => {
    const match = router.match('GET', '/healthz');
    expect(match).toMatchObject({ kind: 'found', route: '/healthz', params: {} });
  });

  it('extracts and percent-decodes parameters', () => {
    const match = router.match('POST', '/v1/users/alice%40example.com/events');
    expect(match).toMatchObject({
      kind: 'found',
      route: '/v1/users/{userId}/events',
      params: { userId: 'alice@example.com' },
    });
  });

  it('answers method_not_allowed with every method of the path', () => {
    const match = router.match('PUT', '/v1/users/bob/connections');
    expect(match).toEqual({
      kind: 'method_not_allowed',
      route: '/v1/users/{userId}/connections',
      allow: ['GET', 'DELETE'],
    });
  });

  it('does not match extra, missing or empty segments', () => {
    expect(router.match('GET', '/healthz/')).toEqual({ kind: 'not_found' });
    expect(router.match('POST', '/v1/users/events')).toEqual({ kind: 'not_found' });
    expect(router.match('POST', '/v1/users//events')).toEqual({ kind: 'not_found' });
    expect(router.match('POST', '/v1/users/a/b/events')).toEqual({ kind: 'not_found' });
    expect(router.match('GET', '/nope')).toEqual({ kind: 'not_found' });
  });

  it('treats a parameter that does not percent-decode as no match', () => {
    expect(router.match('POST', '/v1/users/%E0%A4%A/events')).toEqual({ kind: 'not_found' });
  });

  it('refuses a second handler for the same method and path, and bad templates', () => {
    expect(() => new Router().on('GET', '/a', noop).on('GET', '/a', noop)).toThrow(
      'route GET /a is taken',
    );
    expect(() => new Router().on('GET', 'a', noop)).toThrow('route a must start with "/"');
    expect(() => new Router().on('GET', '/a/{b', noop)).toThrow('route /a/{b: bad segment "{b"');
  });
});
