/**
 * PROTOCOL.md section 2: every refusal of the WebSocket handshake is plain
 * HTTP before the upgrade, with the JSON error body and the right code; the
 * browser subprotocol form; single-use tickets; the `evict-oldest` policy.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';
import { RawWebSocket, upgradeHeaders, upgradeRequest } from '../helpers/raw-websocket.js';
import {
  expectRefusal,
  TestClient,
  type ConnectOptions,
  type Refusal,
} from '../helpers/test-client.js';
import { waitFor } from '../helpers/wait-for.js';

let h: Harness;
const extraClients: TestClient[] = [];
afterEach(async () => {
  for (const client of extraClients.splice(0)) client.terminate();
  await h?.close();
});

/** Expects a refusal with `status` and `code`; checks the shape every refusal shares. */
async function refused(
  status: number,
  code: string,
  options: ConnectOptions,
  label?: string,
): Promise<Refusal> {
  const refusal = await expectRefusal(h.wsUrl, options);
  expect({ status: refusal.status, code: refusal.body.error.code }, label).toEqual({
    status,
    code,
  });
  expect(refusal.headers['content-type']).toBe('application/json');
  expect(refusal.headers['sec-websocket-accept']).toBeUndefined();
  expect(typeof refusal.body.error.message).toBe('string');
  return refusal;
}

/** The refusal never carries the secret, in the body or in a header. */
function expectNotEchoed(refusal: Refusal, secret: string): void {
  const text = JSON.stringify(refusal);
  expect(text).not.toContain(secret);
  // Not even the signature part of a JWT.
  const tail = secret.split('.').at(-1) ?? secret;
  expect(text).not.toContain(tail);
}

function openExtra(options: ConnectOptions): TestClient {
  const client = TestClient.open(h.wsUrl, options);
  extraClients.push(client);
  return client;
}

type Outcome = { accepted: true; client: TestClient } | { accepted: false; refusal: Refusal };

/** One handshake, whatever its outcome. */
function attempt(options: ConnectOptions): Promise<Outcome> {
  const client = openExtra(options);
  return new Promise((resolve, reject) => {
    client.ws.once('open', () => resolve({ accepted: true, client }));
    client.ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () =>
        resolve({
          accepted: false,
          refusal: { status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text) },
        }),
      );
    });
    client.ws.once('error', reject);
  });
}

async function signWith(secret: Uint8Array, claims: Record<string, unknown>): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt(now)
    .setExpirationTime(now + 3600)
    .sign(secret);
}

describe('handshake refusals: 400 bad_request', () => {
  it('refuses a malformed resume cursor', async () => {
    h = await startGateway();
    const token = await h.token('alice');
    for (const lastSeq of ['-1', 'abc', '1.5', '1e3', '', '99999999999999999999']) {
      const refusal = await refused(400, 'bad_request', {
        token,
        query: { lastSeq, epoch: 'e_1' },
      });
      expect(refusal.body.error.field).toBe('lastSeq');
    }
    const alone = await refused(400, 'bad_request', { token, query: { lastSeq: 3 } });
    expect(alone.body.error.field).toBe('epoch');
    const epochAlone = await refused(400, 'bad_request', { token, query: { epoch: 'e_1' } });
    expect(epochAlone.body.error.field).toBe('lastSeq');
  });

  it('refuses a token in the query and never echoes it', async () => {
    h = await startGateway();
    const token = await h.token('alice');
    for (const name of ['access_token', 'token', 'jwt']) {
      const refusal = await refused(400, 'bad_request', { query: { [name]: token } });
      expect(refusal.body.error.field).toBe(name);
      expectNotEchoed(refusal, token);
    }
    // Even next to a valid header: the token must not sit in access logs.
    const both = await refused(400, 'bad_request', { token, query: { access_token: token } });
    expectNotEchoed(both, token);
  });

  it('refuses two credentials at once', async () => {
    h = await startGateway();
    const token = await h.token('alice');
    const other = await h.token('bob');
    const { ticket } = await h.gateway.tickets.issue({ userId: 'alice', expiresAt: null });
    const cases: Record<string, ConnectOptions> = {
      'header + subprotocol': { token, protocols: ['agentsocket.v1', `bearer.${other}`] },
      'header + ticket': { token, query: { ticket } },
      'subprotocol + ticket': { viaSubprotocol: true, token, query: { ticket } },
      'two bearer subprotocols': {
        protocols: ['agentsocket.v1', `bearer.${token}`, `bearer.${other}`],
      },
    };
    for (const [label, options] of Object.entries(cases)) {
      const refusal = await refused(400, 'bad_request', options, label);
      expectNotEchoed(refusal, token);
      expectNotEchoed(refusal, other);
      expectNotEchoed(refusal, ticket);
    }
    // The ticket was not consumed by the refused attempts.
    const client = await TestClient.connect(h.wsUrl, { query: { ticket } });
    extraClients.push(client);
    expect((await client.welcome()).userId).toBe('alice');
  });

  it('refuses a bearer subprotocol offered without agentsocket.v1', async () => {
    h = await startGateway();
    const token = await h.token('alice');
    expectNotEchoed(await refused(400, 'bad_request', { protocols: ['bearer.x'] }), 'bearer.x');
    expectNotEchoed(await refused(400, 'bad_request', { protocols: [`bearer.${token}`] }), token);
    await refused(400, 'bad_request', { query: { ticket: 'short' } });
  });

  it('never echoes a token sent as a query parameter name', async () => {
    h = await startGateway();
    const token = await h.token('alice');
    const refusal = await expectRefusal(`${h.wsUrl}?${token}`, {});
    expect(refusal.status).toBe(400);
    expect(JSON.stringify(refusal.body)).not.toContain(token.slice(0, 8));
    expect(refusal.body.error.field).toBe('query');
  });

  it('reads a cursor with leading zeros as the integer it is', async () => {
    h = await startGateway();
    for (let i = 0; i < 3; i++) await h.gateway.publish('alice', { event: 'token' });
    const first = await h.connect('alice');
    const { epoch } = await first.welcome();
    const client = await h.connect('alice', { query: { lastSeq: '01', epoch } });
    expect((await client.welcome()).replay).toEqual({ from: 2, count: 2, gap: false });
  });
});

describe('handshake refusals: a malformed Authorization header is a malformed token', () => {
  it('answers 401 for a credential that is not a bearer token, and for an API key', async () => {
    h = await startGateway();
    const token = await h.token('alice');
    for (const authorization of [
      `Basic ${token}`,
      `Token ${token}`,
      'Bearer',
      `Bearer  ${token}`,
    ]) {
      await refused(401, 'unauthorized', { headers: { authorization } });
    }
    // An API key (random, not a JWT) never opens a user connection.
    await refused(401, 'unauthorized', { token: 'ask_0123456789abcdefghijklmnopqrstuvwxyz' });
  });
});

describe('handshake refusals: 401 unauthorized', () => {
  it('refuses a missing, malformed, badly signed, expired or not yet valid token', async () => {
    h = await startGateway();
    const now = Math.floor(Date.now() / 1000);
    await refused(401, 'unauthorized', {});
    const bad: Record<string, string> = {
      malformed: 'not-a-jwt',
      badSignature: await signWith(randomBytes(32), { sub: 'alice' }),
      // Past the authenticator's 5 s leeway.
      expired: await h.token('alice', { expiresIn: -60 }),
      notYetValid: await h.token('alice', { claims: { sub: 'alice', nbf: now + 3600 } }),
      badSubject: await h.token('alice', { claims: { sub: 'a/b' } }),
      noSubject: await h.token('alice', { claims: {} }),
    };
    for (const [kind, token] of Object.entries(bad)) {
      const refusal = await refused(401, 'unauthorized', { token }, kind);
      expectNotEchoed(refusal, token);
      // The same through the browser form.
      const viaProtocol = await refused(401, 'unauthorized', { token, viaSubprotocol: true }, kind);
      expectNotEchoed(viaProtocol, token);
    }
    expect(h.gateway.connectionCount).toBe(0);
  });

  it('refuses a sub made only of dots (a path step on the HTTP API), admits dots among letters', async () => {
    h = await startGateway();
    for (const sub of ['.', '..', '...']) {
      const token = await h.token(sub, { claims: { sub } });
      const refusal = await refused(401, 'unauthorized', { token }, sub);
      expectNotEchoed(refusal, token);
    }
    const dotted = await h.connect('a..b');
    expect((await dotted.welcome()).userId).toBe('a..b');
  });

  it('refuses a token without exp, and one issued in the future beyond the leeway', async () => {
    h = await startGateway();
    const now = Math.floor(Date.now() / 1000);
    const noExp = await new SignJWT({ sub: 'alice' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt(now)
      .sign(h.secret);
    // Past the authenticator's 5 s leeway.
    const future = await new SignJWT({ sub: 'alice' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt(now + 60)
      .setExpirationTime(now + 3600)
      .sign(h.secret);
    for (const [kind, token] of Object.entries({ noExp, future })) {
      const refusal = await refused(401, 'unauthorized', { token }, kind);
      expectNotEchoed(refusal, token);
    }
    expect(h.gateway.connectionCount).toBe(0);
  });

  it('refuses an unknown ticket', async () => {
    h = await startGateway();
    const ticket = randomBytes(32).toString('base64url');
    expectNotEchoed(await refused(401, 'unauthorized', { query: { ticket } }), ticket);
  });

  it('accepts a ticket once and refuses its second use', async () => {
    h = await startGateway();
    const { ticket } = await h.gateway.tickets.issue({ userId: 'alice', expiresAt: null });
    const first = await TestClient.connect(h.wsUrl, { query: { ticket } });
    extraClients.push(first);
    expect((await first.welcome()).userId).toBe('alice');
    const second = await refused(401, 'unauthorized', { query: { ticket } });
    expectNotEchoed(second, ticket);
    // The first connection is unaffected.
    await h.gateway.publish('alice', { event: 'note', data: 1 });
    expect((await first.waitForEvents(1))[0]?.seq).toBe(1);
  });
});

describe('handshake refusals: 403 forbidden', () => {
  const allowed = 'https://app.example.com';

  it('refuses an origin outside allowedOrigins, look-alikes and null included', async () => {
    h = await startGateway({ allowedOrigins: [allowed] });
    const token = await h.token('alice');
    for (const origin of [
      'https://evil.com',
      'https://app.example.com.evil.com',
      'https://evil.com/https://app.example.com',
      'http://app.example.com',
      'https://app.example.com:8443',
      'https://APP.example.com.',
      'null',
    ]) {
      const refusal = await refused(403, 'forbidden', { token, headers: { origin } });
      expectNotEchoed(refusal, token);
    }
    const ok = await TestClient.connect(h.wsUrl, { token, headers: { origin: allowed } });
    extraClients.push(ok);
    expect((await ok.welcome()).userId).toBe('alice');
    // No Origin at all is a non-browser client (a browser always sends one): not refused.
    const server = await TestClient.connect(h.wsUrl, { token });
    extraClients.push(server);
    expect((await server.welcome()).userId).toBe('alice');
  });

  it('refuses a blocked user and admits the others', async () => {
    h = await startGateway({ isUserBlocked: async (userId) => userId === 'mallory' });
    const token = await h.token('mallory');
    expectNotEchoed(await refused(403, 'forbidden', { token }), token);
    expect(h.gateway.connections('mallory')).toEqual([]);
    const alice = await h.connect('alice');
    expect((await alice.welcome()).userId).toBe('alice');
  });
});

describe('handshake refusals: 429', () => {
  it('refuses a connection past the per-user limit and admits it again once a slot is free', async () => {
    h = await startGateway({ limits: { maxConnectionsPerUser: 2 } });
    const first = await h.connect('alice');
    await h.connect('alice');
    const token = await h.token('alice');
    const refusal = await refused(429, 'too_many_connections', { token });
    expect(Number(refusal.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // Other users are not limited by alice's connections.
    await h.connect('bob');

    first.close();
    await waitFor(() => h.gateway.connections('alice').length === 1, { what: 'a slot freed' });
    const third = await h.connect('alice');
    expect((await third.welcome()).userId).toBe('alice');
    await refused(429, 'too_many_connections', { token });
  });

  it('gives the slot back when ws itself refuses the upgrade (malformed Sec-WebSocket-Key)', async () => {
    h = await startGateway({ limits: { maxConnectionsPerUser: 1, maxConnectionsPerIp: 1 } });
    const port = Number(new URL(h.wsUrl).port);
    const token = await h.token('alice');
    // Past both limits: a slot kept by any of these would refuse the last connection.
    for (let i = 0; i < 3; i++) {
      const headers = {
        ...upgradeHeaders(`127.0.0.1:${port}`, token),
        'Sec-WebSocket-Key': 'short',
      };
      const raw = await RawWebSocket.open(port, upgradeRequest('/v1/ws', headers));
      await waitFor(() => raw.status !== null, { what: "ws's refusal" });
      expect(raw.status).toBe(400);
    }
    const client = await h.connect('alice');
    expect((await client.welcome()).userId).toBe('alice');
  });

  it('refuses a connection past the per-IP limit, whoever the user', async () => {
    h = await startGateway({ limits: { maxConnectionsPerIp: 2 } });
    const first = await h.connect('alice');
    await h.connect('bob');
    const refusal = await refused(429, 'too_many_connections', { token: await h.token('carol') });
    expect(Number(refusal.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    first.close();
    await waitFor(() => h.gateway.connectionCount === 1, { what: 'a slot freed' });
    expect((await (await h.connect('carol')).welcome()).userId).toBe('carol');
  });

  it('refuses handshakes past the per-IP rate with rate_limited and Retry-After', async () => {
    const rate = 3;
    h = await startGateway({ limits: { handshakesPerIpPerSecond: rate } });
    const tokens = await Promise.all(Array.from({ length: 8 }, (_, i) => h.token(`u${i}`)));
    const startedAt = performance.now();
    const outcomes = await Promise.all(tokens.map((token) => attempt({ token })));
    const elapsedSeconds = (performance.now() - startedAt) / 1000;

    const accepted = outcomes.filter((o) => o.accepted).length;
    // A bucket of `rate` tokens refilling at `rate` per second.
    expect(accepted).toBeGreaterThanOrEqual(rate);
    expect(accepted).toBeLessThanOrEqual(rate + Math.floor(rate * elapsedSeconds));
    const refusals = outcomes.flatMap((o) => (o.accepted ? [] : [o.refusal]));
    expect(refusals.length).toBe(outcomes.length - accepted);
    for (const refusal of refusals) {
      expect({ status: refusal.status, code: refusal.body.error.code }).toEqual({
        status: 429,
        code: 'rate_limited',
      });
      expect(Number(refusal.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
  });
});

describe('handshake refusals: 503', () => {
  it('refuses new handshakes while draining', async () => {
    h = await startGateway();
    const alice = await h.connect('alice');
    const token = await h.token('bob');
    const closing = h.gateway.close();
    const refusal = await refused(503, 'unavailable', { token });
    expect(Number(refusal.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expectNotEchoed(refusal, token);
    await closing;
    expect(await alice.waitForClose()).toMatchObject({ code: 1001 });
    // Still refused after the drain.
    await refused(503, 'unavailable', { token });
  });
});

describe('browser subprotocol form', () => {
  it('accepts agentsocket.v1 + bearer.<jwt> and answers agentsocket.v1 alone', async () => {
    h = await startGateway();
    const token = await h.token('alice');
    const client = openExtra({ token, viaSubprotocol: true });
    const answered = new Promise<string | string[] | undefined>((resolve) =>
      client.ws.once('upgrade', (res: IncomingMessage) =>
        resolve(res.headers['sec-websocket-protocol']),
      ),
    );
    expect((await client.welcome()).userId).toBe('alice');
    expect(await answered).toBe('agentsocket.v1');
    expect(client.ws.protocol).toBe('agentsocket.v1');
  });

  it('accepts agentsocket.v1 offered next to an Authorization header', async () => {
    h = await startGateway();
    const client = await h.connect('alice', { protocols: ['agentsocket.v1'] });
    expect(client.ws.protocol).toBe('agentsocket.v1');
  });
});

describe('evict-oldest policy', () => {
  it('closes the oldest connection with 4409 and welcomes the newcomer', async () => {
    h = await startGateway({
      limits: { maxConnectionsPerUser: 2, userConnectionPolicy: 'evict-oldest' },
    });
    const oldest = await h.connect('alice');
    const middle = await h.connect('alice');
    const bob = await h.connect('bob');
    const newcomer = await h.connect('alice');
    const welcome = await newcomer.welcome();

    expect(await oldest.waitForClose()).toMatchObject({ code: 4409 });
    await waitFor(() => h.gateway.connections('alice').length === 2, { what: 'two left' });
    const ids = h.gateway.connections('alice').map((c) => c.connectionId);
    expect(ids).toEqual([(await middle.welcome()).connectionId, welcome.connectionId]);
    expect(middle.closedWith).toBeNull();
    expect(bob.closedWith).toBeNull();

    await h.gateway.publish('alice', { event: 'note', data: 1 });
    expect((await newcomer.waitForEvents(1))[0]?.seq).toBe(1);
    expect((await middle.waitForEvents(1))[0]?.seq).toBe(1);
  });

  it('never leaves more live connections than the limit while old ones are still closing', async () => {
    h = await startGateway({
      limits: { maxConnectionsPerUser: 1, userConnectionPolicy: 'evict-oldest' },
    });
    const first = await h.connect('alice');
    // A peer that stops reading never answers the close: its connection stays `closing`.
    (first.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    await h.connect('alice');
    await waitFor(() => h.gateway.connections('alice').some((c) => c.state === 'closing'), {
      what: 'the first connection closing',
    });
    const third = await h.connect('alice');
    await third.welcome();
    await waitFor(
      () => h.gateway.connections('alice').filter((c) => c.state === 'open').length === 1,
      { what: 'one live connection' },
    );
    const live = h.gateway.connections('alice').filter((c) => c.state === 'open');
    expect(live.map((c) => c.connectionId)).toEqual([(await third.welcome()).connectionId]);
  });
});
