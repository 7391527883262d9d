/**
 * The Server-Sent Events transport (`GET /v1/sse`, `POST /v1/sse/ack`;
 * docs/protocol.md, "Server-Sent Events transport"), black-box on a real
 * gateway with its HTTP API on 127.0.0.1: a stream is a connection of the
 * node like a WebSocket, with the handshake's refusals, resume and gap rules,
 * acks, operator disconnect, drain, slow-consumer limit and registry limits.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryTicketStore } from '../../src/auth/memory-ticket-store.js';
import { InProcessCluster } from '../../src/broker/in-process-cluster.js';
import { MemoryBroker } from '../../src/broker/memory-broker.js';
import { CloseCode } from '../../src/protocol/close-codes.js';
import { startAguiGateway, type AguiGateway } from '../helpers/agui-gateway.js';
import { SseStream } from '../helpers/sse-stream.js';
import { waitFor } from '../helpers/wait-for.js';

let h: AguiGateway | undefined;
const streams: SseStream[] = [];

afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close();
  await h?.close();
  h = undefined;
});

async function ticket(g: AguiGateway, userId: string, expiresIn?: number): Promise<string> {
  const token = await g.token(userId, expiresIn === undefined ? {} : { expiresIn });
  const response = await fetch(`${g.httpUrl}/v1/tickets`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  });
  expect(response.status).toBe(201);
  return ((await response.json()) as { ticket: string }).ticket;
}

async function open(
  g: AguiGateway,
  query: string,
  headers: Record<string, string> = {},
): Promise<SseStream> {
  const stream = await SseStream.open(`${g.httpUrl}/v1/sse${query}`, { headers });
  streams.push(stream);
  return stream;
}

async function openFor(
  g: AguiGateway,
  userId: string,
  extra = '',
  headers: Record<string, string> = {},
): Promise<SseStream> {
  const stream = await open(g, `?ticket=${await ticket(g, userId)}${extra}`, headers);
  expect(stream.status).toBe(200);
  return stream;
}

async function ack(g: AguiGateway, body: unknown): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${g.httpUrl}/v1/sse/ack`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

async function publishNotes(g: AguiGateway, userId: string, n: number): Promise<void> {
  for (let i = 1; i <= n; i++) await g.gateway.publish(userId, { event: 'note', data: i });
}

describe('GET /v1/sse: refusals before any byte of the stream', () => {
  it('answers 401 for a missing, used or expired ticket, 400 naming the field, 403 for a foreign origin', async () => {
    let clock = Date.now();
    const g = (h = await startAguiGateway({
      allowedOrigins: ['http://app.test'],
      tickets: new MemoryTicketStore({ now: () => clock }),
    }));
    const refusal = async (query: string, headers: Record<string, string> = {}) => {
      const stream = await open(g, query, headers);
      return {
        status: stream.status,
        type: stream.headers['content-type'],
        ...(await stream.errorBody()).error,
      };
    };
    expect(await refusal('')).toMatchObject({ status: 401, code: 'unauthorized' });
    const used = await ticket(g, 'alice');
    const first = await openFor(g, 'alice'); // another ticket: `used` stays unused until now
    await first.welcome();
    expect((await open(g, `?ticket=${used}`)).status).toBe(200);
    expect(await refusal(`?ticket=${used}`)).toMatchObject({ status: 401, code: 'unauthorized' });
    const expired = await ticket(g, 'alice');
    clock += 31_000;
    expect(await refusal(`?ticket=${expired}`)).toMatchObject({
      status: 401,
      code: 'unauthorized',
    });
    clock = Date.now();

    const t = await ticket(g, 'alice');
    expect(await refusal(`?ticket=${t}&access_token=x`)).toMatchObject({
      status: 400,
      field: 'access_token',
    });
    expect(await refusal(`?ticket=${t}&lastSeq=3`)).toMatchObject({ status: 400, field: 'epoch' });
    expect(await refusal(`?ticket=${t}&snapshots=2`)).toMatchObject({
      status: 400,
      field: 'snapshots',
    });
    expect(await refusal(`?ticket=${t}`, { 'last-event-id': 'nonsense' })).toMatchObject({
      status: 400,
      code: 'bad_request',
      field: 'Last-Event-ID',
    });
    expect(
      await refusal(`?ticket=${t}&lastSeq=1&epoch=e1`, { 'last-event-id': 'e1:1' }),
    ).toMatchObject({ status: 400, field: 'Last-Event-ID' });
    expect(await refusal('', { authorization: `Bearer ${await g.token('alice')}` })).toMatchObject({
      status: 400,
      field: 'Authorization',
    });
    expect(await refusal(`?ticket=${t}`, { origin: 'http://evil.test' })).toMatchObject({
      status: 403,
      code: 'forbidden',
    });
    // None of those refusals spent the ticket: the checks run before it is consumed.
    const ok = await open(g, `?ticket=${t}`, { origin: 'http://app.test' });
    expect(ok.status).toBe(200);
    expect(ok.headers['access-control-allow-origin']).toBe('http://app.test');
  });

  it('counts SSE streams in the per-user connection limit, beside WebSockets', async () => {
    const g = (h = await startAguiGateway({ limits: { maxConnectionsPerUser: 2 } }));
    const ws = await g.connect('alice');
    await ws.welcome();
    await (await openFor(g, 'alice')).welcome();
    const third = await open(g, `?ticket=${await ticket(g, 'alice')}`);
    expect(third.status).toBe(429);
    expect((await third.errorBody()).error.code).toBe('too_many_connections');
    expect(
      g.gateway
        .connections('alice')
        .map((c) => c.transport)
        .sort(),
    ).toEqual(['sse', 'websocket']);
  });
});

describe('GET /v1/sse: the stream', () => {
  it('carries the frames of the WebSocket in order, event frames with <epoch>:<seq> ids, LF only', async () => {
    const g = (h = await startAguiGateway({ heartbeatMs: 100 }));
    const stream = await openFor(g, 'alice');
    expect(stream.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(stream.headers['cache-control']).toBe('no-store');
    expect(stream.headers['x-accel-buffering']).toBe('no');
    const welcome = await stream.welcome();
    expect(welcome).toMatchObject({
      type: 'welcome',
      userId: 'alice',
      protocol: expect.any(Number),
    });
    expect(welcome.ackKey).toMatch(/^[A-Za-z0-9_-]{32}$/);
    await publishNotes(g, 'alice', 5);
    await g.gateway.broadcast('maintenance', { at: 1 });
    const events = await stream.waitForEvents(5);
    await waitFor(() => stream.ofType('broadcast').length === 1);
    expect(events.map((e) => e.data.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(events.map((e) => e.id)).toEqual(
      [1, 2, 3, 4, 5].map((s) => `${welcome.epoch as string}:${s}`),
    );
    expect(events.map((e) => e.data.data)).toEqual([1, 2, 3, 4, 5]);
    // The heartbeat is a comment, never a ping frame.
    await waitFor(() => stream.comments >= 2, { what: 'two keep-alive comments' });
    expect(stream.ofType('ping')).toEqual([]);
    expect(stream.raw).not.toContain('\r');
    expect(g.gateway.connections('alice')[0]).toMatchObject({ transport: 'sse', sentSeq: 5 });
  });

  it('resumes from Last-Event-ID (or lastSeq + epoch) with no gap and no duplicate; a stale cursor follows the gap rules', async () => {
    const g = (h = await startAguiGateway());
    const first = await openFor(g, 'alice');
    const welcome = await first.welcome();
    await publishNotes(g, 'alice', 3);
    const seen = await first.waitForEvents(3);
    first.close();
    await waitFor(() => g.gateway.connections('alice').length === 0);
    await publishNotes(g, 'alice', 2);

    const resumed = await openFor(g, 'alice', '', { 'last-event-id': seen.at(-1)!.id! });
    const again = await resumed.welcome();
    expect(again.replay).toMatchObject({ from: 4, gap: false });
    await g.gateway.publish('alice', { event: 'note', data: 6 });
    expect((await resumed.waitForEvents(3)).map((e) => e.data.seq)).toEqual([4, 5, 6]);

    const byQuery = await openFor(g, 'alice', `&lastSeq=5&epoch=${welcome.epoch as string}`);
    await byQuery.welcome();
    expect((await byQuery.waitForEvents(1)).map((e) => e.data.seq)).toEqual([6]);

    // Another epoch: the whole retained history, with gap: true (as on the WebSocket).
    const stale = await openFor(g, 'alice', '', { 'last-event-id': 'other-epoch:2' });
    expect((await stale.welcome()).replay).toMatchObject({ gap: true });
    expect((await stale.waitForEvents(6)).map((e) => e.data.seq)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('takes acks by POST /v1/sse/ack with the welcome ackKey; refuses a wrong key, an unknown connection and an unsent seq', async () => {
    const g = (h = await startAguiGateway());
    const stream = await openFor(g, 'alice');
    const welcome = await stream.welcome();
    await publishNotes(g, 'alice', 3);
    await stream.waitForEvents(3);
    const connectionId = welcome.connectionId as string;
    const ackKey = welcome.ackKey as string;

    expect(await ack(g, { connectionId, ackKey, seq: 2 })).toEqual({
      status: 200,
      body: { acked: 2 },
    });
    await waitFor(() => g.gateway.connections('alice')[0]?.ackedSeq === 2, { what: 'acked 2' });

    const wrongKey = await ack(g, { connectionId, ackKey: 'A'.repeat(32), seq: 3 });
    expect(wrongKey).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    const unknown = await ack(g, {
      connectionId: 'c_00000000-0000-4000-8000-000000000000',
      ackKey,
      seq: 3,
    });
    expect(unknown).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    expect(await ack(g, { connectionId, ackKey, seq: 9 })).toMatchObject({
      status: 400,
      body: { error: { code: 'bad_request', field: 'seq' } },
    });
    expect(await ack(g, { connectionId, ackKey, seq: -1 })).toMatchObject({
      status: 400,
      body: { error: { field: 'seq' } },
    });
    expect(await ack(g, { connectionId, ackKey, seq: 3, extra: 1 })).toMatchObject({
      status: 400,
      body: { error: { field: 'extra' } },
    });
    expect(g.gateway.connections('alice')[0]?.ackedSeq).toBe(2);
    expect(await ack(g, { connectionId, ackKey, seq: 3 })).toMatchObject({ status: 200 });
    await waitFor(() => g.gateway.connections('alice')[0]?.ackedSeq === 3, { what: 'acked 3' });
  });

  it('ends with a close frame: operator disconnect (4401), token expiry (4401), drain (1001)', async () => {
    const g = (h = await startAguiGateway({ heartbeatMs: 100 }));
    const stream = await openFor(g, 'alice');
    await stream.welcome();
    const closed = await fetch(`${g.httpUrl}/v1/users/alice/connections`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${g.apiKey}` },
    });
    expect(await closed.json()).toEqual({ closed: 1 });
    expect(await stream.waitForEnd()).toMatchObject({
      type: 'close',
      code: CloseCode.TokenExpired,
    });
    await waitFor(() => g.gateway.connections('alice').length === 0);

    // The harness's leeway is 5 s: a token 2 s past its `exp` has three
    // seconds left (one second was too few for a loaded machine to open it).
    const expiring = await open(g, `?ticket=${await ticket(g, 'bob', -2)}`);
    streams.push(expiring);
    await expiring.welcome();
    expect(await expiring.waitForEnd(8000)).toMatchObject({
      type: 'close',
      code: CloseCode.TokenExpired,
      reason: 'token expired or revoked',
    });

    const draining = await openFor(g, 'carol');
    await draining.welcome();
    const drained = g.gateway.close();
    expect(await draining.waitForEnd()).toMatchObject({ type: 'close', code: CloseCode.GoingAway });
    await drained;
    expect(draining.raw).not.toContain('\r');
  });
});

describe('GET /v1/sse: slow consumer', () => {
  let unixServer: Server | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    unixServer?.closeAllConnections();
    await new Promise<void>((resolve) =>
      unixServer ? unixServer.close(() => resolve()) : resolve(),
    );
    if (dir) rmSync(dir, { recursive: true, force: true });
    unixServer = undefined;
    dir = undefined;
  });

  it('closes a stream whose reader stopped with 4429 once the response holds more than maxBufferedBytes', async () => {
    const maxBufferedBytes = 256 * 1024;
    const g = (h = await startAguiGateway({ limits: { maxBufferedBytes }, historySize: 5000 }));
    // A Unix socket: its kernel buffers are small, so the response's own fills (test/helpers/slow-reader.ts).
    dir = mkdtempSync(join(tmpdir(), 'agentsocket-sse-'));
    const socketPath = join(dir, 'api.sock');
    const listener = g.server.listeners('request')[0] as (...args: unknown[]) => void;
    unixServer = createServer((req, res) => listener(req, res));
    await new Promise<void>((resolve) => unixServer!.listen(socketPath, resolve));
    const slow = await SseStream.open(
      `http://localhost/v1/sse?ticket=${await ticket(g, 'alice')}`,
      {
        socketPath,
      },
    );
    streams.push(slow);
    await slow.welcome();
    slow.pause();
    const text = 'x'.repeat(8 * 1024);
    let published = 0;
    while (g.gateway.connections('alice')[0]?.state === 'open') {
      expect(published, 'the stream was never cut off').toBeLessThan(2000);
      published++;
      await g.gateway.publish('alice', { event: 'chunk', data: { n: published, text } });
    }
    expect(published * text.length).toBeGreaterThanOrEqual(maxBufferedBytes);
    slow.resume();
    const last = await slow.waitForEnd();
    expect(last).toMatchObject({ type: 'close', code: CloseCode.SlowConsumer });
    // What it got is a gapless prefix.
    expect(slow.seqs).toEqual(slow.seqs.map((_, i) => i + 1));
    expect(slow.seqs.length).toBeLessThan(published);
  });
});

describe('POST /v1/sse/ack on several nodes', () => {
  let other: AguiGateway | undefined;
  const brokers: MemoryBroker[] = [];
  afterEach(async () => {
    await other?.close();
    other = undefined;
    for (const broker of brokers.splice(0)) await broker.close();
  });

  it('is refused with 404 by a node that does not hold the stream; the unacked critical event then ends the stream with 4408', async () => {
    const cluster = new InProcessCluster();
    const [brokerA, brokerB] = ['a', 'b'].map((nodeId) => new MemoryBroker({ cluster, nodeId }));
    brokers.push(brokerA!, brokerB!);
    const a = (h = await startAguiGateway({ broker: brokerA!, ackTimeoutMs: 300 }));
    other = await startAguiGateway({ broker: brokerB!, ackTimeoutMs: 300 });
    const stream = await openFor(a, 'alice');
    const welcome = await stream.welcome();
    await other.gateway.publish('alice', { event: 'order', data: 1, critical: true });
    await stream.waitForEvents(1);
    const body = { connectionId: welcome.connectionId, ackKey: welcome.ackKey, seq: 1 };
    // A load balancer that sends the ack to the other node: refused, nothing moves.
    expect(await ack(other, body)).toMatchObject({
      status: 404,
      body: { error: { code: 'not_found', field: 'connectionId' } },
    });
    expect(a.gateway.connections('alice')[0]?.ackedSeq).toBe(0);
    expect(await stream.waitForEnd()).toMatchObject({ type: 'close', code: CloseCode.Timeout });

    // On the node that holds it, the same ack is taken.
    const again = await openFor(a, 'alice', `&lastSeq=0&epoch=${welcome.epoch as string}`);
    const second = await again.welcome();
    await again.waitForEvents(1);
    expect(
      await ack(a, { connectionId: second.connectionId, ackKey: second.ackKey, seq: 1 }),
    ).toMatchObject({ status: 200 });
    await waitFor(() => a.gateway.connections('alice')[0]?.ackedSeq === 1, { what: 'acked' });
  });
});
