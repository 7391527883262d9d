/**
 * The HTTP API of PROTOCOL.md section 5, black-box: a real `agentsocket serve`
 * process started by the CLI, driven over HTTP and WebSocket on 127.0.0.1.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeys } from '../../src/auth/api-keys.js';
import { mintDevToken } from '../../src/auth/dev-token.js';
import type { BroadcastFrame, EventFrame } from '../../src/protocol/frames.js';
import { startCliServer, type CliServer } from '../helpers/cli-process.js';
import { expectRefusal, TestClient } from '../helpers/test-client.js';
import { waitFor } from '../helpers/wait-for.js';

const SECRET = randomBytes(32).toString('base64url');
const API_KEY = ApiKeys.generate();
const ORIGIN = 'http://app.test';
/** Every credential handed out in this file: none may appear in the server's output. */
const credentials: string[] = [SECRET, API_KEY];

let server: CliServer;

async function token(userId: string): Promise<string> {
  const jwt = await mintDevToken({ secret: SECRET, userId, ttlSeconds: 600 });
  credentials.push(jwt);
  return jwt;
}

interface Answer {
  status: number;
  headers: Headers;
  // The shape differs per route; each test reads the fields it checks.
  body: Record<string, unknown> & {
    error?: { code: string; message: string; field?: string };
  };
}

async function api(
  method: string,
  path: string,
  options: {
    body?: unknown;
    rawBody?: string;
    headers?: Record<string, string>;
    key?: string | null;
  } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  const key = options.key === undefined ? API_KEY : options.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  let body: string | undefined = options.rawBody;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(`${server.url}${path}`, { method, headers, body });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text === '' ? {} : (JSON.parse(text) as Answer['body']),
  };
}

async function connect(userId: string): Promise<TestClient> {
  return TestClient.connect(server.wsUrl, { token: await token(userId) });
}

async function publishedCount(): Promise<number> {
  const stats = await api('GET', '/v1/stats');
  return (stats.body.events as { published: number }).published;
}

beforeAll(async () => {
  server = await startCliServer(
    [
      '--max-batch-events',
      '5',
      '--max-data-size',
      '1KiB',
      '--max-body-size',
      '16KiB',
      '--allowed-origins',
      ORIGIN,
      '--log-level',
      'debug',
    ],
    { AGENTSOCKET_JWT_SECRET: SECRET, AGENTSOCKET_API_KEYS: API_KEY },
  );
});

afterAll(async () => {
  expect(await server.stop('SIGTERM')).toBe(0);
  // No token, ticket, secret or API key in anything the server wrote.
  const output = server.stdout() + server.stderr();
  expect(output).toContain('"msg":"http request"');
  for (const secret of credentials) expect(output).not.toContain(secret);
});

describe('health and readiness', () => {
  it('answers /healthz and /readyz without an API key', async () => {
    expect(await api('GET', '/healthz', { key: null })).toMatchObject({
      status: 200,
      body: { status: 'ok' },
    });
    expect(await api('GET', '/readyz', { key: null })).toMatchObject({
      status: 200,
      body: { ready: true, reasons: [] },
    });
  });
});

describe('API keys', () => {
  it('refuses a missing or wrong key with a 401 JSON error', async () => {
    for (const key of [null, 'x'.repeat(40)]) {
      const answer = await api('POST', '/v1/users/alice/events', { key, body: { event: 'x' } });
      expect(answer.status).toBe(401);
      expect(answer.body.error).toMatchObject({ code: 'unauthorized' });
    }
  });

  it('never accepts a user token as an API key', async () => {
    const answer = await api('GET', '/v1/stats', { key: await token('alice') });
    expect(answer.status).toBe(401);
  });

  it('refuses credentials in the query string', async () => {
    const answer = await api('GET', `/v1/stats?api_key=${API_KEY}`);
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({ code: 'bad_request', field: 'api_key' });
    expect(JSON.stringify(answer.body)).not.toContain(API_KEY);
  });
});

describe('routing', () => {
  it('answers 404 for unknown paths and 405 with Allow for other methods', async () => {
    const missing = await api('GET', '/v2/nothing');
    expect(missing).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    expect(missing.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const method = await api('PUT', '/v1/users/alice/connections');
    expect(method.status).toBe(405);
    expect(method.headers.get('allow')).toBe('GET, DELETE');
    expect(method.body.error).toMatchObject({ code: 'method_not_allowed' });
  });
});

describe('upgrades', () => {
  it('refuses a WebSocket upgrade on any other path with 404 instead of holding the socket', async () => {
    const refusal = await expectRefusal(server.wsUrl.replace('/v1/ws', '/v1/elsewhere'), {
      token: await token('alice'),
    });
    expect(refusal.status).toBe(404);
    expect(refusal.body.error.code).toBe('not_found');
  });
});

describe('POST /v1/users/{userId}/events', () => {
  it('answers 202 with consecutive seqs, one epoch, the id and delivered', async () => {
    const first = await api('POST', '/v1/users/pub-1/events', {
      body: { event: 'note', data: { n: 1 }, id: 'note-1' },
    });
    expect(first.status).toBe(202);
    expect(first.body).toMatchObject({ seq: 1, id: 'note-1', delivered: 0 });
    expect(first.body.epoch).toEqual(expect.any(String));
    const second = await api('POST', '/v1/users/pub-1/events', { body: { event: 'note' } });
    expect(second.body).toMatchObject({ seq: 2, epoch: first.body.epoch });
    // The same id again: the first seq, nothing sent again.
    const repeat = await api('POST', '/v1/users/pub-1/events', {
      body: { event: 'note', id: 'note-1' },
    });
    expect(repeat.body).toMatchObject({ seq: 1, duplicate: true });
  });

  it('delivers to a connected user and counts the connection', async () => {
    const client = await connect('pub-2');
    const answer = await api('POST', '/v1/users/pub-2/events', {
      body: { event: 'agent_started', runId: 'r1', data: { agent: 'hm' } },
    });
    expect(answer.body).toMatchObject({ seq: 1, delivered: 1 });
    const [frame] = await client.waitForEvents(1);
    expect(frame).toMatchObject({
      seq: 1,
      event: 'agent_started',
      runId: 'r1',
      data: { agent: 'hm' },
    });
    client.close();
  });

  it('answers each validation failure with its status and field', async () => {
    const cases: Array<[string, Parameters<typeof api>[2], number, string, string]> = [
      ['/v1/users/bad%20user/events', { body: { event: 'x' } }, 400, 'bad_request', 'userId'],
      ['/v1/users/u/events', { body: { event: 'Bad' } }, 400, 'bad_request', 'event'],
      ['/v1/users/u/events', { body: { event: 'x', extra: 1 } }, 400, 'bad_request', 'extra'],
      [
        '/v1/users/u/events',
        { body: { event: 'agent_started', data: { agent: 'a' } } },
        400,
        'bad_request',
        'runId',
      ],
      [
        '/v1/users/u/events',
        { body: { event: 'x', data: 'y'.repeat(2000) } },
        413,
        'payload_too_large',
        'data',
      ],
      [
        '/v1/users/u/events',
        { body: { event: 'x', data: 'y'.repeat(20_000) } },
        413,
        'payload_too_large',
        'body',
      ],
      [
        '/v1/users/u/events',
        { rawBody: '{"event":', headers: { 'content-type': 'application/json' } },
        400,
        'bad_request',
        'body',
      ],
      [
        '/v1/users/u/events',
        { rawBody: 'event=x', headers: { 'content-type': 'text/plain' } },
        415,
        'unsupported_media_type',
        'content-type',
      ],
      ['/v1/users/u/events?wait=30001', { body: { event: 'x' } }, 400, 'bad_request', 'wait'],
      ['/v1/users/u/events?wait=soon', { body: { event: 'x' } }, 400, 'bad_request', 'wait'],
    ];
    for (const [path, options, status, code, field] of cases) {
      const answer = await api('POST', path, options);
      expect({ path, status: answer.status, error: answer.body.error }).toMatchObject({
        path,
        status,
        error: { code, field },
      });
    }
    // Nothing of that reached user u.
    const ok = await api('POST', '/v1/users/u/events', { body: { event: 'x' } });
    expect(ok.body.seq).toBe(1);
  });

  it('with wait, times out with delivered 0 when nobody is connected', async () => {
    const started = Date.now();
    const answer = await api('POST', '/v1/users/nobody/events?wait=300', { body: { event: 'x' } });
    expect(answer.status).toBe(202);
    expect(answer.body).toMatchObject({ seq: 1, delivered: 0 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('with wait, resolves when the user connects during the wait (publish before connect)', async () => {
    const before = await publishedCount();
    const started = Date.now();
    const pending = api('POST', '/v1/users/late/events?wait=10000', {
      body: { event: 'note', data: { hello: true } },
    });
    // The event is stored before anyone is connected…
    await waitFor(async () => (await publishedCount()) > before, { what: 'the publish' });
    // …and a connection that arrives during the wait receives it from history.
    const client = await connect('late');
    const [frame] = await client.waitForEvents(1);
    const answer = await pending;
    expect(answer.status).toBe(202);
    expect(answer.body).toMatchObject({ seq: 1, delivered: 1 });
    expect(frame).toMatchObject({ seq: 1, event: 'note', data: { hello: true } });
    expect(Date.now() - started).toBeLessThan(10_000);
    client.close();
  });
});

describe('POST /v1/events (batch)', () => {
  it('answers results in input order, seqs in order per user', async () => {
    const answer = await api('POST', '/v1/events', {
      body: {
        events: [
          { userId: 'b-1', event: 'e', data: 1 },
          { userId: 'b-2', event: 'e', data: 2 },
          { userId: 'b-1', event: 'e', data: 3 },
          { userId: 'b-1', event: 'e', data: 4, id: 'given' },
          { userId: 'b-2', event: 'e', data: 5 },
        ],
      },
    });
    expect(answer.status).toBe(202);
    const results = answer.body.results as Array<{ seq: number; id: string }>;
    expect(results.map((r) => r.seq)).toEqual([1, 1, 2, 3, 2]);
    expect(results[3]?.id).toBe('given');
  });

  it('publishes nothing when one item is refused', async () => {
    const answer = await api('POST', '/v1/events', {
      body: {
        events: [
          { userId: 'all-1', event: 'e' },
          { userId: 'all-2', event: 'e' },
          { userId: 'all-1', event: 'NOPE' },
        ],
      },
    });
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({ code: 'bad_request', field: 'events[2].event' });
    for (const userId of ['all-1', 'all-2']) {
      const next = await api('POST', `/v1/users/${userId}/events`, { body: { event: 'e' } });
      expect(next.body.seq).toBe(1);
    }
  });

  it('refuses more events than --max-batch-events with 400 and data over the limit with 413', async () => {
    const many = Array.from({ length: 6 }, () => ({ userId: 'many', event: 'e' }));
    const tooMany = await api('POST', '/v1/events', { body: { events: many } });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error).toMatchObject({ field: 'events' });
    const big = await api('POST', '/v1/events', {
      body: { events: [{ userId: 'many', event: 'e', data: 'z'.repeat(2000) }] },
    });
    expect(big.status).toBe(413);
    expect(big.body.error).toMatchObject({ field: 'events[0].data' });
  });
});

/**
 * A request with its path sent byte for byte: `fetch` would fold `%2e%2e`
 * the way the server must not.
 */
function rawRequest(method: string, path: string, body?: unknown): Promise<Answer> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request({
      host: hostname,
      port,
      method,
      path,
      headers: {
        authorization: `Bearer ${API_KEY}`,
        ...(text === undefined ? {} : { 'content-type': 'application/json' }),
      },
    });
    req.on('response', (res) => {
      let answer = '';
      res.on('data', (chunk: Buffer) => (answer += chunk.toString()));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: new Headers(),
          body: answer === '' ? {} : (JSON.parse(answer) as Answer['body']),
        }),
      );
    });
    req.on('error', reject);
    req.end(text);
  });
}

/** `data` nested `depth` arrays deep: `[[[…0…]]]`. */
function nested(depth: number): unknown {
  return JSON.parse(`${'['.repeat(depth)}0${']'.repeat(depth)}`);
}

describe('hardening: ids, query parameters, data depth, media type', () => {
  it('refuses user ids made only of dots with 400, however the path spells them', async () => {
    for (const path of [
      '/v1/users/%2e%2e/events',
      '/v1/users/../events',
      '/v1/users/%2E/events',
      '/v1/users/.../events',
    ]) {
      const answer = await rawRequest('POST', path, { event: 'note' });
      expect({ path, status: answer.status, error: answer.body.error }).toMatchObject({
        path,
        status: 400,
        error: { code: 'bad_request', field: 'userId' },
      });
    }
    for (const method of ['GET', 'DELETE']) {
      const answer = await rawRequest(method, '/v1/users/%2e%2e/connections');
      expect(answer.status).toBe(400);
      expect(answer.body.error?.field).toBe('userId');
    }
    const batch = await api('POST', '/v1/events', {
      body: { events: [{ userId: '..', event: 'note' }] },
    });
    expect(batch.body.error).toMatchObject({ code: 'bad_request', field: 'events[0].userId' });
    // Dots among other characters are an ordinary id.
    expect((await rawRequest('POST', '/v1/users/a..b/events', { event: 'note' })).status).toBe(202);
  });

  it('refuses every query parameter a route does not take, never echoing the value', async () => {
    const cases: Array<[string, string, string]> = [
      ['GET', `/v1/stats?apiKey=${API_KEY}`, 'apiKey'],
      ['GET', '/v1/stats?verbose=1', 'verbose'],
      ['GET', '/healthz?probe=1', 'probe'],
      ['GET', `/metrics?${API_KEY}`, 'query'],
      ['GET', '/v1/users/alice/connections?all=1', 'all'],
      ['POST', '/v1/events?wait=100', 'wait'],
      ['POST', `/v1/broadcast?auth=${API_KEY}`, 'auth'],
      ['POST', `/v1/users/alice/events?wait=0&apiKey=${API_KEY}`, 'apiKey'],
    ];
    for (const [method, path, field] of cases) {
      // A valid API key in the header: the refusal is about the query alone.
      const answer = await api(method, path, method === 'POST' ? { body: { event: 'x' } } : {});
      expect({ path, status: answer.status, error: answer.body.error }).toMatchObject({
        path,
        status: 400,
        error: { code: 'bad_request', field },
      });
      expect(JSON.stringify(answer.body)).not.toContain(API_KEY);
    }
    // The parameters a route does take still work.
    const waited = await api('POST', '/v1/users/q-user/events?wait=1', { body: { event: 'x' } });
    expect(waited.status).toBe(202);
  });

  it('refuses data nested deeper than the limit with 400 naming data, on every route', async () => {
    const deep = nested(65);
    const answers = {
      user: await api('POST', '/v1/users/deep/events', { body: { event: 'x', data: deep } }),
      batch: await api('POST', '/v1/events', {
        body: { events: [{ userId: 'deep', event: 'x', data: deep }] },
      }),
      broadcast: await api('POST', '/v1/broadcast', { body: { event: 'x', data: deep } }),
    };
    expect(answers.user.body.error).toMatchObject({ code: 'bad_request', field: 'data' });
    expect(answers.batch.body.error).toMatchObject({
      code: 'bad_request',
      field: 'events[0].data',
    });
    expect(answers.broadcast.body.error).toMatchObject({ code: 'bad_request', field: 'data' });
    for (const answer of Object.values(answers)) expect(answer.status).toBe(400);
    // As deep as the limit is fine.
    const atLimit = await api('POST', '/v1/broadcast', { body: { event: 'x', data: nested(64) } });
    expect(atLimit.status).toBe(202);
  });

  it('answers 415 to application/vnd.api+json', async () => {
    const answer = await api('POST', '/v1/users/u-vnd/events', {
      rawBody: '{"event":"x"}',
      headers: { 'content-type': 'application/vnd.api+json' },
    });
    expect(answer.status).toBe(415);
    expect(answer.body.error).toMatchObject({ code: 'unsupported_media_type' });
  });
});

describe('POST /v1/broadcast', () => {
  it('sends a broadcast frame to open connections and counts them', async () => {
    const client = await connect('listener');
    const answer = await api('POST', '/v1/broadcast', {
      body: { event: 'maintenance', data: { at: 5 } },
    });
    expect(answer.status).toBe(202);
    expect(answer.body.connections).toBeGreaterThanOrEqual(1);
    const frame = await client.waitForFrame((f): f is BroadcastFrame => f.type === 'broadcast');
    expect(frame).toMatchObject({ event: 'maintenance', data: { at: 5 } });
    expect(await api('POST', '/v1/broadcast', { body: { event: '!' } })).toMatchObject({
      status: 400,
      body: { error: { field: 'event' } },
    });
    client.close();
  });
});

describe('/v1/users/{userId}/connections', () => {
  it('lists the connections of a user and closes them with 4401', async () => {
    const a = await connect('ops');
    const b = await connect('ops');
    const list = await api('GET', '/v1/users/ops/connections');
    expect(list.status).toBe(200);
    const connections = list.body.connections as Array<Record<string, unknown>>;
    expect(connections).toHaveLength(2);
    for (const key of [
      'connectionId',
      'state',
      'connectedAt',
      'remoteAddress',
      'userAgent',
      'ackedSeq',
      'bufferedBytes',
      'node',
    ]) {
      expect(connections[0]).toHaveProperty(key);
    }
    expect(connections[0]?.remoteAddress).toBe('127.0.0.1');
    const closed = await api('DELETE', '/v1/users/ops/connections');
    expect(closed).toMatchObject({ status: 200, body: { closed: 2 } });
    expect((await a.waitForClose()).code).toBe(4401);
    expect((await b.waitForClose()).code).toBe(4401);
    // The server forgets a connection once its close handshake is over.
    await waitFor(
      async () =>
        ((await api('GET', '/v1/users/ops/connections')).body.connections as unknown[]).length ===
        0,
      { what: 'the closed connections to be gone' },
    );
    expect((await api('GET', '/v1/users/no%20pe/connections')).status).toBe(400);
  });
});

describe('POST /v1/tickets', () => {
  it('issues a single-use ticket for the user of the token', async () => {
    const answer = await api('POST', '/v1/tickets', { key: await token('ticketed') });
    expect(answer.status).toBe(201);
    const ticket = answer.body.ticket as string;
    credentials.push(ticket);
    expect(answer.body.expiresAt).toBeGreaterThan(Date.now());
    const client = await TestClient.connect(server.wsUrl, { query: { ticket } });
    expect((await client.welcome()).userId).toBe('ticketed');
    const again = await expectRefusal(server.wsUrl, { query: { ticket } });
    expect(again.status).toBe(401);
    client.close();
  });

  it('takes only a user token: no API key, no missing token', async () => {
    expect((await api('POST', '/v1/tickets')).status).toBe(401);
    expect((await api('POST', '/v1/tickets', { key: null })).body.error).toMatchObject({
      code: 'unauthorized',
    });
  });

  it('answers CORS for the allowed origin, preflight included, and refuses others', async () => {
    const preflight = await api('OPTIONS', '/v1/tickets', {
      key: null,
      headers: {
        origin: ORIGIN,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(preflight.headers.get('access-control-allow-headers')).toContain('Authorization');
    const issued = await api('POST', '/v1/tickets', {
      key: await token('browser'),
      headers: { origin: ORIGIN },
    });
    credentials.push(issued.body.ticket as string);
    expect(issued.status).toBe(201);
    expect(issued.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    const foreign = await api('OPTIONS', '/v1/tickets', {
      key: null,
      headers: { origin: 'http://evil.test' },
    });
    expect(foreign.status).toBe(403);
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('GET /v1/stats and /metrics', () => {
  it('reports gateway counters and background tasks', async () => {
    const stats = await api('GET', '/v1/stats');
    expect(stats.status).toBe(200);
    expect(stats.body).toMatchObject({
      connections: expect.any(Number),
      users: expect.any(Number),
      events: { published: expect.any(Number) },
      errors: expect.any(Object),
    });
    const tasks = (stats.body.tasks as Array<{ name: string; healthy: boolean }>).map(
      (t) => t.name,
    );
    expect(tasks).toEqual(
      expect.arrayContaining(['heartbeat-sweep', 'ticket-expiry', 'broker-health']),
    );
  });

  it('serves Prometheus text that parses, with counters that move when events flow', async () => {
    expect((await api('GET', '/metrics', { key: null })).status).toBe(401);
    const read = async (): Promise<Map<string, number>> => {
      const response = await fetch(`${server.url}/metrics`, {
        headers: { authorization: `Bearer ${API_KEY}` },
      });
      expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const samples = new Map<string, number>();
      for (const line of (await response.text()).split('\n')) {
        if (line === '' || line.startsWith('#')) continue;
        // name{label="value",…} value — label values are quoted and may hold braces.
        const match =
          /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})?) (\S+)$/.exec(
            line,
          );
        expect(match, `metric line: ${line}`).not.toBeNull();
        // A Prometheus float, as Go's ParseFloat reads it: a number, or NaN and
        // ±Inf in any case (prom-client writes NaN as `Nan`).
        const text = match?.[2] as string;
        const special = /^(?:([+-]?)inf(?:inity)?|nan)$/i.exec(text);
        const value = special
          ? special[1] === undefined
            ? NaN
            : special[1] === '-'
              ? -Infinity
              : Infinity
          : Number(text);
        expect(special !== null || !Number.isNaN(value), `metric value: ${line}`).toBe(true);
        samples.set(match?.[1] as string, value);
      }
      return samples;
    };
    const before = await read();
    const client = await connect('metered');
    await api('POST', '/v1/users/metered/events', { body: { event: 'm' } });
    await client.waitForEvents(1);
    const after = await read();
    const published = 'agentsocket_events_published_total{kind="new"}';
    expect(after.get(published)).toBe((before.get(published) ?? 0) + 1);
    expect(after.get('agentsocket_events_delivered_total')).toBeGreaterThan(
      before.get('agentsocket_events_delivered_total') ?? 0,
    );
    // Requests are labelled by template, never by the raw path.
    const route =
      'agentsocket_http_requests_total{route="POST /v1/users/{userId}/events",status="202"}';
    expect(after.get(route)).toBeGreaterThan(0);
    expect([...after.keys()].some((name) => name.includes('metered'))).toBe(false);
    expect(after.get('agentsocket_connections')).toBeGreaterThanOrEqual(1);
    client.close();
  });
});

describe('events reach the socket exactly as published', () => {
  it('delivers a batch to connected users in seq order', async () => {
    const client = await connect('ordered');
    await api('POST', '/v1/events', {
      body: { events: [1, 2, 3, 4, 5].map((n) => ({ userId: 'ordered', event: 'n', data: n })) },
    });
    const frames: EventFrame[] = await client.waitForEvents(5);
    expect(frames.map((f) => [f.seq, f.data])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 4],
      [5, 5],
    ]);
    client.close();
  });
});

describe('the run grammar over HTTP (protocol 1.1)', () => {
  type Step = { event: string; data: Record<string, unknown> };
  const started: Step = { event: 'agent_started', data: { agent: 'a' } };
  const exec = (id: string): Step => ({
    event: 'tool_executing',
    data: { toolCallId: id, tool: 't', args: {} },
  });
  const done = (id: string): Step => ({
    event: 'tool_completed',
    data: { toolCallId: id, tool: 't' },
  });
  const completed = (status: string): Step => ({ event: 'agent_completed', data: { status } });
  const thinking: Step = { event: 'agent_thinking', data: { text: 'late' } };

  const RULES: [code: string, before: Step[], violation: Step][] = [
    ['run_not_started', [], thinking],
    ['run_already_started', [started], started],
    ['run_finished', [started, completed('succeeded')], thinking],
    ['tool_call_duplicate', [started, exec('c1'), done('c1')], exec('c1')],
    ['tool_call_unknown', [started, exec('c1')], done('c2')],
    ['tool_calls_open', [started, exec('c1'), exec('c2')], completed('succeeded')],
  ];

  let userCounter = 0;
  const publish = (userId: string, runId: string, step: Step): Promise<Answer> =>
    api('POST', `/v1/users/${userId}/events`, { body: { ...step, runId } });

  async function violations(rule: string): Promise<number> {
    const text = await (
      await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${API_KEY}` } })
    ).text();
    const line = text
      .split('\n')
      .find((l) => l.startsWith(`agentsocket_run_grammar_violations_total{rule="${rule}"}`));
    return line === undefined ? 0 : Number(line.split(' ').at(-1));
  }

  for (const [code, before, violation] of RULES) {
    it(`answers ${violation.event} with 409 ${code}, delivers nothing and uses no seq`, async () => {
      const user = `grammar-${++userCounter}`;
      const client = await connect(user);
      for (const step of before) expect((await publish(user, 'r1', step)).status).toBe(202);
      const counted = await violations(code);

      const refused = await publish(user, 'r1', violation);
      expect(refused.status).toBe(409);
      expect(refused.body.error).toMatchObject({ code });
      if (code === 'tool_calls_open') expect(refused.body.error?.message).toMatch(/c1, c2$/);
      expect(await violations(code)).toBe(counted + 1);

      // The next event gets the next seq, and it is the next the client sees.
      const marker = await api('POST', `/v1/users/${user}/events`, { body: { event: 'marker' } });
      expect(marker.body.seq).toBe(before.length + 1);
      const events = await client.waitForEvents(before.length + 1);
      expect(events.map((e) => [e.seq, e.event])).toEqual([
        ...before.map((step, i) => [i + 1, step.event]),
        [before.length + 1, 'marker'],
      ]);
      const run = await api('GET', `/v1/users/${user}/runs/r1`);
      if (before.length === 0) expect(run.status).toBe(404);
      else expect((run.body.run as { upToSeq: number }).upToSeq).toBe(before.length);
      client.close();
    });
  }

  it('answers a batch [ok, violation, ok] with the error in its slot and the others published in order', async () => {
    const user = `grammar-${++userCounter}`;
    const client = await connect(user);
    const answer = await api('POST', '/v1/events', {
      body: {
        events: [
          { userId: user, runId: 'r1', ...started },
          { userId: user, runId: 'r1', ...started },
          { userId: user, runId: 'r1', ...completed('succeeded') },
        ],
      },
    });
    expect(answer.status).toBe(202);
    const results = answer.body.results as Record<string, unknown>[];
    expect(results[0]).toMatchObject({ seq: 1, duplicate: false });
    expect(results[1]).toEqual({
      error: { code: 'run_already_started', message: 'the run already has its agent_started' },
    });
    expect(results[2]).toMatchObject({ seq: 2, duplicate: false });
    const events = await client.waitForEvents(2);
    expect(events.map((e) => [e.seq, e.event])).toEqual([
      [1, 'agent_started'],
      [2, 'agent_completed'],
    ]);
    client.close();
  });

  it('accepts a failed run with open tool calls and lists them', async () => {
    const user = `grammar-${++userCounter}`;
    for (const step of [started, exec('a'), exec('b'), done('a')]) await publish(user, 'r1', step);
    const end = await publish(user, 'r1', completed('failed'));
    expect(end).toMatchObject({ status: 202, body: { seq: 5, openToolCalls: ['b'] } });
    const run = await api('GET', `/v1/users/${user}/runs/r1`);
    expect(run.body.run).toMatchObject({
      status: 'failed',
      completed: { status: 'failed', openToolCalls: ['b'] },
    });
  });

  it('answers a repeated id with the first publish, never with 409', async () => {
    const user = `grammar-${++userCounter}`;
    await api('POST', `/v1/users/${user}/events`, { body: { ...started, runId: 'r1', id: 's-1' } });
    const end = { ...completed('succeeded'), runId: 'r1', id: 'end-1' };
    const first = await api('POST', `/v1/users/${user}/events`, { body: end });
    const again = await api('POST', `/v1/users/${user}/events`, { body: end });
    expect(again).toMatchObject({ status: 202, body: { seq: first.body.seq, duplicate: true } });
  });
});
