import { describe, expect, it } from 'vitest';
import {
  Router,
  splitRequestTarget,
  unknownQueryParameter,
  type RouteHandler,
} from '../../src/http/router.js';

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

describe('splitRequestTarget', () => {
  it('keeps the path as sent: dot segments, encoded or not, are not folded', () => {
    for (const target of ['/v1/users/%2e%2e/events', '/v1/users/../events', '/v1/users/./events']) {
      expect(splitRequestTarget(target).pathname).toBe(target);
    }
    const router = new Router().on('POST', '/v1/users/{userId}/events', noop);
    expect(
      router.match('POST', splitRequestTarget('/v1/users/%2e%2e/events').pathname),
    ).toMatchObject({
      kind: 'found',
      params: { userId: '..' },
    });
  });

  it('splits the query from the path and drops a fragment', () => {
    const { pathname, query } = splitRequestTarget('/v1/stats?a=1&b=%20x#frag?c=3');
    expect(pathname).toBe('/v1/stats');
    expect([...query]).toEqual([
      ['a', '1'],
      ['b', ' x'],
    ]);
    expect(splitRequestTarget('/healthz').pathname).toBe('/healthz');
    expect(splitRequestTarget('/healthz#x').pathname).toBe('/healthz');
  });

  it('parses an absolute-form target, and gives no path for garbage', () => {
    const absolute = splitRequestTarget('http://gw.test/v1/stats?x=1');
    expect(absolute.pathname).toBe('/v1/stats');
    expect(absolute.query.get('x')).toBe('1');
    expect(splitRequestTarget('*').pathname).toBe('');
  });
});

describe('unknownQueryParameter', () => {
  const allowed = new Set(['wait']);
  it('passes declared parameters and names the first other one, never its value', () => {
    expect(unknownQueryParameter(new URLSearchParams('wait=5'), allowed)).toBeUndefined();
    expect(unknownQueryParameter(new URLSearchParams(''), new Set())).toBeUndefined();
    expect(unknownQueryParameter(new URLSearchParams('wait=5&apiKey=secret'), allowed)).toBe(
      'apiKey',
    );
    expect(unknownQueryParameter(new URLSearchParams('wait=1'), new Set())).toBe('wait');
  });

  it('says "query" for a name that is not a plain word (a token sent as the name)', () => {
    expect(unknownQueryParameter(new URLSearchParams('eyJhbGciOi.x.y'), allowed)).toBe('query');
    expect(unknownQueryParameter(new URLSearchParams(`${'a'.repeat(33)}=1`), allowed)).toBe(
      'query',
    );
  });
});
