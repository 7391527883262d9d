/**
 * The HTTP API embedded in an app's own `node:http` server, as the package
 * root exports it: `createGateway` + `attach` + `createHttpApi` beside the
 * app's own routes, over real sockets on 127.0.0.1.
 *
 * The decision pinned here: a path that is none of the API's goes to the
 * app's `next` untouched (an unknown `/v1/...` path included), so the app
 * keeps its own `/v1` routes and its own 404.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiKeys,
  createGateway,
  createHttpApi,
  createJwtAuthenticator,
  createLogger,
  mintDevToken,
  OptionError,
  type GatewayNode,
  type HttpApiHandler,
} from '../../src/index.js';
import { LogCapture } from '../helpers/log-capture.js';
import { expectRefusal, TestClient } from '../helpers/test-client.js';

const SECRET = randomBytes(32).toString('base64url');
const API_KEY = ApiKeys.generate();
const ORIGIN = 'http://app.test';
const MAX_BODY_BYTES = 4096;

/** The app's own routes: what an embedding app serves besides the gateway. */
function appRoutes(req: IncomingMessage, res: ServerResponse): void {
  const body = (status: number, value: unknown): void => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(value));
  };
  if (req.method === 'GET' && req.url === '/hello') return body(200, { hello: 'from the app' });
  // The app's own route under /v1: the API must leave it alone.
  if (req.method === 'GET' && req.url === '/v1/orders') return body(200, { orders: [] });
  body(404, { app: 'no such page', path: req.url });
}

type Middleware = (req: IncomingMessage, res: ServerResponse, next: () => void) => void;

/** A minimal connect-style chain, as Express's `app.use(…)` runs middleware. */
function chain(...middleware: Middleware[]): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const step = (index: number): void => middleware[index]?.(req, res, () => step(index + 1));
    step(0);
  };
}

interface App {
  gateway: GatewayNode;
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** An app on port 0 whose requests go to `listener`; the gateway's WebSocket on the same server. */
async function startApp(
  gateway: GatewayNode,
  listener: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<App> {
  const server = createServer(listener);
  gateway.attach(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  await gateway.ready;
  const { port } = server.address() as AddressInfo;
  return {
    gateway,
    server,
    url: `http://127.0.0.1:${port}`,
    async close() {
      await gateway.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function newGateway(logs?: LogCapture): GatewayNode {
  return createGateway({
    authenticator: createJwtAuthenticator({ secret: SECRET }),
    allowedOrigins: [ORIGIN],
    limits: { maxBodyBytes: MAX_BODY_BYTES },
    ...(logs ? { logger: createLogger({ level: 'debug' }, logs) } : {}),
  });
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  // The shape differs per route; each test reads the fields it checks.
  body: Record<string, unknown> & { error?: { code: string; message: string; field?: string } };
}

async function call(
  base: string,
  method: string,
  path: string,
  options: { body?: unknown; rawBody?: string; bearer?: string | null; origin?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  const bearer = options.bearer === undefined ? API_KEY : options.bearer;
  if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
  if (options.origin !== undefined) headers.origin = options.origin;
  let body = options.rawBody;
  if (options.body !== undefined) body = JSON.stringify(options.body);
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${base}${path}`, { method, headers, body });
  const text = await response.text();
  let parsed: Answer['body'] = {};
  try {
    parsed = JSON.parse(text) as Answer['body'];
  } catch {
    // /metrics answers text; the tests that read it use `text`.
  }
  return { status: response.status, headers: response.headers, text, body: parsed };
}

function token(userId: string): Promise<string> {
  return mintDevToken({ secret: SECRET, userId, ttlSeconds: 600 });
}

describe('an app mounting the API in front of its own routes (node:http)', () => {
  const logs = new LogCapture();
  let app: App;
  let api: HttpApiHandler;
  const credentials: string[] = [SECRET, API_KEY];

  beforeAll(async () => {
    const gateway = newGateway(logs);
    api = createHttpApi(gateway, { apiKeys: [API_KEY] });
    app = await startApp(gateway, (req, res) => {
      api(req, res, () => appRoutes(req, res));
    });
  });

  afterAll(async () => {
    await app.close();
    // Requests were logged, and no key, token or ticket with them.
    expect(logs.text).toContain('"msg":"http request"');
    for (const credential of credentials) expect(logs.text).not.toContain(credential);
  });

  const ws = (): string => `${app.url.replace('http:', 'ws:')}/v1/ws`;

  it('a publish with the API key reaches a WebSocket client of the app', async () => {
    const jwt = await token('alice');
    credentials.push(jwt);
    const alice = await TestClient.connect(ws(), { token: jwt, autoAck: true });
    const answer = await call(app.url, 'POST', '/v1/users/alice/events?wait=2000', {
      body: { event: 'agent_started', runId: 'r1', data: { agent: 'helper' } },
    });
    expect(answer.status).toBe(202);
    expect(answer.body).toMatchObject({ seq: 1, delivered: 1, duplicate: false });
    expect(answer.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const [event] = await alice.waitForEvents(1);
    expect(event).toMatchObject({ event: 'agent_started', runId: 'r1', seq: 1 });
    alice.close();
  });

  it('a missing or wrong API key gets 401, and nothing is published', async () => {
    for (const bearer of [null, ApiKeys.generate()]) {
      const answer = await call(app.url, 'POST', '/v1/users/bob/events', {
        bearer,
        body: { event: 'token', data: { t: 'x' } },
      });
      expect(answer.status).toBe(401);
      expect(answer.body.error).toMatchObject({ code: 'unauthorized' });
    }
    const stats = await call(app.url, 'GET', '/v1/stats');
    expect(stats.status).toBe(200);
    expect(stats.body).toMatchObject({ events: { published: 1 } });
  });

  it("the gateway's limits and origins hold: a body past maxBodyBytes 413, a foreign Origin 403", async () => {
    const big = await call(app.url, 'POST', '/v1/users/bob/events', {
      rawBody: JSON.stringify({ event: 'token', data: { t: 'x'.repeat(MAX_BODY_BYTES) } }),
    });
    expect(big.status).toBe(413);
    expect(big.body.error).toMatchObject({ code: 'payload_too_large' });
    const jwt = await token('carol');
    credentials.push(jwt);
    const foreign = await call(app.url, 'POST', '/v1/tickets', {
      bearer: jwt,
      origin: 'http://evil.test',
    });
    expect(foreign.status).toBe(403);
    expect(foreign.body.error).toMatchObject({ code: 'forbidden', field: 'origin' });
  });

  it('tickets: a user token buys a single-use ticket that opens a WebSocket once', async () => {
    const jwt = await token('dave');
    credentials.push(jwt);
    const issued = await call(app.url, 'POST', '/v1/tickets', { bearer: jwt, origin: ORIGIN });
    expect(issued.status).toBe(201);
    expect(issued.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    const ticket = issued.body.ticket as string;
    credentials.push(ticket);
    const dave = await TestClient.connect(ws(), { query: { ticket } });
    expect((await dave.welcome()).userId).toBe('dave');
    expect((await expectRefusal(ws(), { query: { ticket } })).status).toBe(401);
    dave.close();
    // An API key is not a user token.
    expect((await call(app.url, 'POST', '/v1/tickets')).status).toBe(401);
  });

  it('/healthz, /readyz and /metrics answer; /metrics needs the key and counts by route', async () => {
    expect(await call(app.url, 'GET', '/healthz', { bearer: null })).toMatchObject({
      status: 200,
      body: { status: 'ok' },
    });
    expect(await call(app.url, 'GET', '/readyz', { bearer: null })).toMatchObject({
      status: 200,
      body: { ready: true, reasons: [] },
    });
    expect((await call(app.url, 'GET', '/metrics', { bearer: null })).status).toBe(401);
    expect((await call(app.url, 'GET', '/v1/orders', { bearer: null })).status).toBe(200);
    const metrics = await call(app.url, 'GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(
      /agentsocket_http_requests_total\{route="POST \/v1\/users\/\{userId\}\/events",status="202"\} 1/,
    );
    // The app's own requests are not the API's to count.
    expect(metrics.text).not.toContain('route="unmatched"');
  });

  it("the app's own routes still answer, its /v1 routes included", async () => {
    expect(await call(app.url, 'GET', '/hello', { bearer: null })).toMatchObject({
      status: 200,
      body: { hello: 'from the app' },
    });
    const orders = await call(app.url, 'GET', '/v1/orders', { bearer: null });
    expect(orders).toMatchObject({ status: 200, body: { orders: [] } });
    expect(orders.headers.get('x-request-id')).toBeNull();
  });

  it("an unknown /v1 path goes to the app's next untouched: the app's 404", async () => {
    const answer = await call(app.url, 'POST', '/v1/nope?x=1', { body: {} });
    expect(answer).toMatchObject({
      status: 404,
      body: { app: 'no such page', path: '/v1/nope?x=1' },
    });
    expect(answer.headers.get('x-request-id')).toBeNull();
  });

  it('a path of the API with another method is the API’s: 405 with Allow', async () => {
    const answer = await call(app.url, 'GET', '/v1/events');
    expect(answer.status).toBe(405);
    expect(answer.headers.get('allow')).toBe('POST');
    expect(answer.body.error).toMatchObject({ code: 'method_not_allowed' });
  });
});

describe('without next, and in a connect-style chain under a prefix', () => {
  it('without next, an unknown path gets the JSON 404 of the CLI server', async () => {
    const gateway = newGateway();
    const api = createHttpApi(gateway, { apiKeys: [API_KEY] });
    const app = await startApp(gateway, (req, res) => {
      api(req, res);
    });
    try {
      const answer = await call(app.url, 'GET', '/hello');
      expect(answer.status).toBe(404);
      expect(answer.body.error).toMatchObject({ code: 'not_found' });
    } finally {
      await app.close();
    }
  });

  it('under a prefix: the API answers below it, everything else reaches the app with its URL intact', async () => {
    const gateway = newGateway();
    const api = createHttpApi(gateway, { apiKeys: [API_KEY], prefix: '/realtime' });
    const app = await startApp(
      gateway,
      chain(api, (req, res) => appRoutes(req, res)),
    );
    try {
      const jwt = await token('erin');
      const erin = await TestClient.connect(`${app.url.replace('http:', 'ws:')}/v1/ws`, {
        token: jwt,
      });
      const published = await call(app.url, 'POST', '/realtime/v1/users/erin/events', {
        body: { event: 'token', data: { t: 'hi' } },
      });
      expect(published.status).toBe(202);
      const [event] = await erin.waitForEvents(1);
      expect(event).toMatchObject({ event: 'token', data: { t: 'hi' } });
      erin.close();

      expect((await call(app.url, 'GET', '/realtime/healthz')).status).toBe(200);
      expect((await call(app.url, 'GET', '/realtime?x')).body).toMatchObject({
        app: 'no such page',
        path: '/realtime?x',
      });
      // Outside the prefix the API's paths are the app's.
      expect(await call(app.url, 'GET', '/healthz')).toMatchObject({
        status: 404,
        body: { app: 'no such page', path: '/healthz' },
      });
      expect(await call(app.url, 'GET', '/realtimex/healthz')).toMatchObject({
        status: 404,
        body: { path: '/realtimex/healthz' },
      });
      // Below the prefix but not the API's: the app sees the URL it was sent.
      expect(await call(app.url, 'GET', '/realtime/v1/nope')).toMatchObject({
        status: 404,
        body: { app: 'no such page', path: '/realtime/v1/nope' },
      });
      expect((await call(app.url, 'GET', '/hello')).body).toEqual({ hello: 'from the app' });
    } finally {
      await app.close();
    }
  });
});

describe('createHttpApi options', () => {
  const gateway = newGateway();
  afterAll(() => gateway.close());

  it('refuses missing or bad API keys, naming the key by position and never showing it', () => {
    expect(() => createHttpApi(gateway, {} as never)).toThrow(OptionError);
    expect(() => createHttpApi(gateway, {} as never)).toThrow(/option apiKeys is required/);
    expect(() => createHttpApi(gateway, { apiKeys: [] })).toThrow(/at least one API key/);
    const short = 'short-key';
    const error = (() => {
      try {
        createHttpApi(gateway, { apiKeys: [API_KEY, short] });
      } catch (thrown) {
        return thrown as Error;
      }
      throw new Error('a short key was accepted');
    })();
    expect(error).toBeInstanceOf(OptionError);
    expect(error.message).toMatch(/^option apiKeys: key #1 must be 16-512 characters$/);
    expect(error.message).not.toContain(short);
  });

  it('refuses a prefix that is not a path, and a gateway that is not one', () => {
    for (const prefix of ['realtime', '/realtime/', '/', '/a?b', '']) {
      expect(() => createHttpApi(gateway, { apiKeys: [API_KEY], prefix })).toThrow(
        /option prefix must be a path like "\/realtime"/,
      );
    }
    expect(() => createHttpApi({} as GatewayNode, { apiKeys: [API_KEY] })).toThrow(
      /gateway must be the GatewayNode of createGateway\(\)/,
    );
  });

  it('takes a verifier of its own instead of a key list', async () => {
    const own = createGateway({ authenticator: createJwtAuthenticator({ secret: SECRET }) });
    const api = createHttpApi(own, {
      apiKeys: { verifyAuthorizationHeader: (header) => header === 'Bearer from-the-vault' },
    });
    const app = await startApp(own, (req, res) => {
      api(req, res);
    });
    try {
      expect((await call(app.url, 'GET', '/v1/stats', { bearer: 'from-the-vault' })).status).toBe(
        200,
      );
      expect((await call(app.url, 'GET', '/v1/stats')).status).toBe(401);
    } finally {
      await app.close();
    }
  });
});
