/**
 * End-to-end tests of the client SDK against the real gateway on 127.0.0.1:
 * the public SDK on one side, `startGateway` (a real HTTP server, the gateway,
 * an HS256 authenticator) on the other. What the SDK does without a gateway
 * (option checks, the backoff policy as a pure function, the ack batching, the
 * seq filter) is unit-tested in `test/unit/client-*.test.ts`; here every claim
 * is checked on real sockets, and where the server's side matters (acks, the
 * connection id, replays) it is read from the gateway itself.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { decodeJwt } from 'jose';
import { AgentSocketClient } from '../../src/client/index.js';
import type {
  AgentSocketClientOptions,
  GapInfo,
  WebSocketConstructorLike,
} from '../../src/client/index.js';
import type { CreateGatewayOptions, GatewayNode } from '../../src/gateway/gateway.js';
import type { EventInput } from '../../src/protocol/index.js';
import type { EventFrame, WelcomeFrame } from '../../src/protocol/frames.js';
import { runSimulatedAgent } from '../../src/demo/simulated-agent.js';
import { startGateway, type HarnessOptions } from '../helpers/gateway-harness.js';
import { waitFor } from '../helpers/wait-for.js';
import { MapStorage } from '../helpers/map-storage.js';

/** Server pings every 300 ms: liveness and expiry sweeps run several times a second. */
const TEST_HEARTBEAT_MS = 300;

interface Harness {
  gateway: GatewayNode;
  /** `ws://127.0.0.1:<port>/v1/ws` */
  wsUrl: string;
  /** A user token for `userId`, valid for `ttlSeconds` (default 3600). */
  mintToken(userId: string, ttlSeconds?: number): Promise<string>;
  publish(userId: string, input: EventInput): Promise<{ seq: number }>;
  /** Closes every connection of the user with `code` (default 4401). */
  disconnectUser(userId: string, code?: number): number;
  close(): Promise<void>;
}

async function startHarness(
  options: Partial<CreateGatewayOptions> = {},
  harnessOptions: HarnessOptions = {},
): Promise<Harness> {
  const h = await startGateway({ heartbeatMs: TEST_HEARTBEAT_MS, ...options }, harnessOptions);
  return {
    gateway: h.gateway,
    wsUrl: h.wsUrl,
    mintToken: (userId, ttlSeconds = 3600) => h.token(userId, { expiresIn: ttlSeconds }),
    publish: (userId, input) => h.gateway.publish(userId, input),
    disconnectUser: (userId, code) => h.gateway.disconnectUser(userId, code),
    close: () => h.close(),
  };
}

/** A latch: `wait()` resolves once `open()` was called. Holds a token provider: the client stays away. */
function latch(): { wait: () => Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { wait: () => opened, open };
}

/**
 * A `ws` WebSocket whose sockets the test can tamper with, one behaviour per
 * socket: `sockets[i]` is the i-th socket the client made, `urls[i]` the URL
 * it asked for. `dropAcks(i)` loses every ack the client sends on socket i
 * (as a network that dies after delivering); `rewriteUrl(i, f)` changes the
 * handshake URL of socket i.
 */
function tamperingWebSocket() {
  const urls: string[] = [];
  const sockets: WebSocket[] = [];
  const ackless = new Set<number>();
  const rewrites = new Map<number, (url: URL) => void>();
  const sentAcks: number[][] = [];
  class TamperingWebSocket extends WebSocket {
    readonly index: number;
    constructor(url: string, protocols?: string | string[], options?: WebSocket.ClientOptions) {
      const index = urls.length;
      const target = new URL(url);
      rewrites.get(index)?.(target);
      urls.push(target.toString());
      super(target, protocols, options);
      this.index = index;
      sockets.push(this);
      sentAcks.push([]);
    }
    override send(data: unknown, ...rest: unknown[]): void {
      const text = String(data);
      if (text.includes('"type":"ack"')) {
        const seq = (JSON.parse(text) as { seq: number }).seq;
        sentAcks[this.index]!.push(seq);
        if (ackless.has(this.index)) return;
      }
      // `ws`'s send takes (data, options?, cb?); the SDK only ever passes a string.
      (super.send as (...args: unknown[]) => void)(data, ...rest);
    }
  }
  return {
    Ctor: TamperingWebSocket as unknown as WebSocketConstructorLike,
    urls,
    sockets,
    sentAcks,
    dropAcks: (index: number) => void ackless.add(index),
    rewriteUrl: (index: number, rewrite: (url: URL) => void) => void rewrites.set(index, rewrite),
  };
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(
  options: Partial<CreateGatewayOptions> = {},
  harnessOptions: HarnessOptions = {},
) {
  const harness = await startHarness(options, harnessOptions);
  cleanups.push(() => harness.close());
  const client = (userId: string, clientOptions: Partial<AgentSocketClientOptions> = {}) => {
    const c = new AgentSocketClient({
      url: harness.wsUrl,
      token: () => harness.mintToken(userId),
      WebSocket,
      backoff: () => 10,
      ...clientOptions,
    });
    cleanups.push(() => c.close());
    return c;
  };
  return { harness, client };
}

function seqsOf(client: AgentSocketClient): number[] {
  const seqs: number[] = [];
  client.on('event', (e) => seqs.push(e.seq));
  return seqs;
}

function welcomesOf(client: AgentSocketClient): WelcomeFrame[] {
  const welcomes: WelcomeFrame[] = [];
  client.on('welcome', (w) => welcomes.push(w));
  return welcomes;
}

function statesOf(client: AgentSocketClient): string[] {
  const states: string[] = [];
  client.on('state', ({ state }) => states.push(state));
  return states;
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function publishTicks(harness: Harness, userId: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await harness.publish(userId, { event: 'tick', data: i });
}

describe('client SDK against the gateway: connecting and following runs', () => {
  it('connects with the token as a subprotocol and as a header', async () => {
    const { harness, client } = await setup();
    const browserLike = client('alice');
    expect((await browserLike.connect()).userId).toBe('alice');
    const nodeLike = client('alice', { auth: 'header' });
    expect((await nodeLike.connect()).userId).toBe('alice');
    expect(browserLike.state).toBe('open');
    expect(harness.gateway.connections('alice')).toHaveLength(2);
    // The welcome names the server's heartbeat; the SDK's liveness watchdog follows it.
    expect(browserLike.welcome?.heartbeatMs).toBe(TEST_HEARTBEAT_MS);
  });

  it('sends the header with auth "header" even when a header-less global WebSocket exists', async () => {
    const { client } = await setup();
    // Like a browser's or Node 22's native WebSocket: it takes no options, so no headers.
    let globalCreated = 0;
    class HeaderlessWebSocket extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols);
        globalCreated++;
      }
    }
    vi.stubGlobal('WebSocket', HeaderlessWebSocket);
    cleanups.push(() => void vi.unstubAllGlobals());
    const c = client('alice', { auth: 'header', WebSocket: undefined });
    void c.connect().catch(() => {});
    await waitFor(() => c.state === 'open', { what: 'open with the header', timeoutMs: 3000 });
    expect(c.welcome?.userId).toBe('alice');
    expect(globalCreated).toBe(0);
  });

  it('follows a simulated agent run to agent_completed with run() and waitForEvent()', async () => {
    const { harness, client } = await setup();
    const c = client('alice');
    await c.connect();
    const run = c.run('r1');
    const done = runSimulatedAgent(harness.publish, 'alice', 'hi', {
      tokenDelayMs: 0,
      runId: 'r1',
    });
    const followed: EventFrame[] = [];
    for await (const e of run) followed.push(e);
    await done;
    const names = followed.map((e) => e.event);
    expect(names[0]).toBe('agent_started');
    expect(names.at(-1)).toBe('agent_completed');
    // Each of the five steps, in the order the agent published them.
    const firstOf = (name: string) => names.indexOf(name);
    expect(firstOf('agent_thinking')).toBeGreaterThan(firstOf('agent_started'));
    expect(firstOf('tool_executing')).toBeGreaterThan(names.lastIndexOf('agent_thinking'));
    expect(firstOf('tool_completed')).toBe(firstOf('tool_executing') + 1);
    expect(followed.map((e) => e.seq)).toEqual(range(1, followed.length));
    // waitForEvent finds events that already arrived (from the recent events).
    const completed = await c.waitForEvent('r1', 'agent_completed');
    expect(completed.data.status).toBe('succeeded');
    const tool = await c.waitForEvent('r1', 'tool_completed');
    expect(tool.data.result).toMatchObject({ hits: expect.any(Array) });
  });

  it('follows a run across a server-side drop (1001) without a missing or repeated step', async () => {
    const { harness, client } = await setup();
    const c = client('alice');
    const welcomes = welcomesOf(c);
    await c.connect();
    const followed: number[] = [];
    const following = (async () => {
      // A replay merges deltas (protocol 1.1): a `seqFrom` frame stands for its whole range.
      for await (const e of c.run('r1')) followed.push(...range(e.seqFrom ?? e.seq, e.seq));
    })();
    const done = runSimulatedAgent(harness.publish, 'alice', 'tell me about resume', {
      tokenDelayMs: 5,
      runId: 'r1',
    });
    await waitFor(() => followed.length >= 3, { what: 'the run under way' });
    expect(harness.disconnectUser('alice', 1001)).toBe(1);
    await Promise.all([done, following]);
    expect(welcomes.length).toBeGreaterThanOrEqual(2);
    expect(welcomes[1]!.connectionId).not.toBe(welcomes[0]!.connectionId);
    expect(followed).toEqual(range(1, followed.length));
    const completed = await c.waitForEvent('r1', 'agent_completed');
    expect(followed.at(-1)).toBe(completed.seq);
  });

  it('keeps at most recentEventsLimit recent events, the newest ones', async () => {
    const { harness, client } = await setup();
    const c = client('alice', { recentEventsLimit: 5 });
    const seqs = seqsOf(c);
    await c.connect();
    await publishTicks(harness, 'alice', 12);
    await waitFor(() => seqs.length === 12);
    expect(c.recentEvents().map((e) => e.seq)).toEqual([8, 9, 10, 11, 12]);
  });
});

describe('client SDK against the gateway: reconnect and resume', () => {
  it('resumes after a client-side drop: every event once, in order, including those published while away', async () => {
    const { harness, client } = await setup();
    const c = client('alice');
    const seqs = seqsOf(c);
    await c.connect();
    await publishTicks(harness, 'alice', 50);
    c.reconnect();
    await publishTicks(harness, 'alice', 50);
    await waitFor(() => seqs.length >= 100, { what: '100 events' });
    expect(seqs).toEqual(range(1, 100));
    expect(c.cursor?.lastSeq).toBe(100);
  });

  it.each([
    [1001, 'server draining'],
    [4408, 'heartbeat or ack timeout'],
    [4429, 'slow consumer'],
  ])(
    'reconnects after a server-side close %i (%s) and resumes with the events published while away, once each',
    async (code) => {
      const { harness, client } = await setup();
      let away: ReturnType<typeof latch> | null = null;
      const c = client('alice', {
        token: async () => {
          await away?.wait();
          return harness.mintToken('alice');
        },
      });
      const seqs = seqsOf(c);
      const states = statesOf(c);
      const welcomes = welcomesOf(c);
      await c.connect();
      await publishTicks(harness, 'alice', 5);
      await waitFor(() => seqs.length === 5);
      away = latch();
      expect(harness.disconnectUser('alice', code)).toBe(1);
      await waitFor(() => c.state === 'reconnecting', { what: 'reconnecting' });
      // The client is away (its token provider holds it): these wait in history.
      await publishTicks(harness, 'alice', 5);
      expect(harness.gateway.connections('alice')).toHaveLength(0);
      away.open();
      await waitFor(() => seqs.length === 10 && c.state === 'open', { what: 'the resume' });
      expect(seqs).toEqual(range(1, 10));
      expect(states).toEqual(['connecting', 'open', 'reconnecting', 'open']);
      // It resumed from its cursor: the server replayed exactly what it missed.
      expect(welcomes[1]!.replay).toMatchObject({ from: 6, count: 5, gap: false });
      expect(c.duplicatesDropped).toBe(0);
    },
  );

  it('reconnects after a real 4408 (a critical event not acked in time); the event is not shown twice', async () => {
    const { harness, client } = await setup({ ackTimeoutMs: 200 });
    const ws = tamperingWebSocket();
    ws.dropAcks(0); // the first socket's acks are lost on the way
    const c = client('alice', { WebSocket: ws.Ctor });
    const seqs = seqsOf(c);
    const closes: number[] = [];
    c.on('state', ({ state }) => {
      if (state === 'reconnecting') closes.push(ws.sockets.length);
    });
    await c.connect();
    await harness.publish('alice', { event: 'tick', critical: true });
    await waitFor(() => ws.sockets.length === 2 && c.state === 'open', {
      what: 'the server closing the silent socket with 4408, and the reconnect',
    });
    expect(ws.sockets[0]!.readyState).toBe(WebSocket.CLOSED);
    expect(ws.sentAcks[0]).toEqual([1]); // it did try to ack: the ack was lost
    await harness.publish('alice', { event: 'tick', critical: true });
    await waitFor(() => harness.gateway.connections('alice')[0]?.ackedSeq === 2, {
      what: 'the second socket acking',
    });
    expect(seqs).toEqual([1, 2]);
    expect(closes).toEqual([1]);
  });

  it('gets a new token and resumes after 4401 (logout of every connection)', async () => {
    const { harness, client } = await setup();
    let tokens = 0;
    const c = client('alice', { token: () => (tokens++, harness.mintToken('alice')) });
    const seqs = seqsOf(c);
    await c.connect();
    await harness.publish('alice', { event: 'tick' });
    await waitFor(() => seqs.length === 1);
    expect(harness.disconnectUser('alice', 4401)).toBe(1);
    await harness.publish('alice', { event: 'tick' });
    await waitFor(() => seqs.length === 2 && c.state === 'open', { what: 'resume' });
    expect(tokens).toBe(2);
    expect(seqs).toEqual([1, 2]);
  });

  it('resumes from a persisted cursor in a new client (a page reload)', async () => {
    const { harness, client } = await setup();
    const storage = new MapStorage();
    const first = client('alice', { storage });
    const seqs = seqsOf(first);
    await first.connect();
    await publishTicks(harness, 'alice', 3);
    await waitFor(() => seqs.length === 3);
    first.close(); // flushes the ack and the cursor
    await harness.publish('alice', { event: 'tick' });
    const reloaded = client('alice', { storage });
    const after = seqsOf(reloaded);
    await reloaded.connect();
    await waitFor(() => after.length === 1, { what: 'the event published while away' });
    expect(after).toEqual([4]);
  });

  it('surfaces a gap when history was trimmed while the client was away', async () => {
    const { harness, client } = await setup({ historySize: 5 });
    let away: ReturnType<typeof latch> | null = null;
    const c = client('alice', {
      token: async () => {
        await away?.wait();
        return harness.mintToken('alice');
      },
    });
    const seqs = seqsOf(c);
    const gaps: GapInfo[] = [];
    c.on('gap', (gap) => gaps.push(gap));
    await c.connect();
    await publishTicks(harness, 'alice', 3);
    await waitFor(() => seqs.length === 3);
    away = latch();
    harness.disconnectUser('alice', 1001);
    await waitFor(() => c.state === 'reconnecting');
    await publishTicks(harness, 'alice', 10); // seqs 4..13; history keeps 9..13
    away.open();
    await waitFor(() => seqs.length === 8 && c.state === 'open', { what: 'the partial resume' });
    expect(gaps).toHaveLength(1);
    expect(gaps[0]).toMatchObject({ from: 9, lastSeq: 3, newEpoch: false });
    expect(gaps[0]!.epoch).toBe(c.cursor?.epoch);
    expect(seqs).toEqual([1, 2, 3, ...range(9, 13)]);
  });

  it('drops what the server replays a second time: the app sees each event once', async () => {
    const { harness, client } = await setup();
    const ws = tamperingWebSocket();
    // Socket 0 receives events 1..5 but its acks are lost; socket 1 asks
    // without a cursor (as after a lost cursor), so the server replays every
    // event no connection acked: 1..5 again, which the client already has.
    ws.dropAcks(0);
    ws.rewriteUrl(1, (url) => {
      url.searchParams.delete('lastSeq');
      url.searchParams.delete('epoch');
    });
    const c = client('alice', { WebSocket: ws.Ctor });
    const seqs = seqsOf(c);
    const welcomes = welcomesOf(c);
    await c.connect();
    await publishTicks(harness, 'alice', 5);
    await waitFor(() => seqs.length === 5 && ws.sentAcks[0]!.includes(5), {
      what: 'five events received and acked (the acks lost)',
    });
    c.reconnect();
    await waitFor(() => welcomes.length === 2 && c.state === 'open');
    await publishTicks(harness, 'alice', 2);
    await waitFor(() => seqs.length === 7, { what: 'the two new events' });
    expect(welcomes[1]!.replay).toMatchObject({ from: 1, count: 5 }); // the server did replay
    expect(seqs).toEqual(range(1, 7));
    expect(c.duplicatesDropped).toBe(5);
    // The replayed duplicates are acked on the new socket, so the server stops replaying them.
    await waitFor(() => harness.gateway.connections('alice')[0]?.ackedSeq === 7);
  });

  it('passes the attempt number to the backoff policy across refused handshakes, and starts over once a connection stayed open', async () => {
    // The policy's arithmetic is unit-tested (test/unit/client-backoff.test.ts);
    // this checks the client drives it with real failures.
    const { harness, client } = await setup();
    const attempts: number[] = [];
    let badTokens = 2;
    const c = client('alice', {
      backoff: (attempt) => (attempts.push(attempt), 5),
      token: () => (badTokens-- > 0 ? 'not-a-jwt' : harness.mintToken('alice')),
    });
    const errors: string[] = [];
    c.on('error', (e) => errors.push(e.kind));
    await c.connect();
    expect(attempts).toEqual([0, 1]);
    expect(errors).toContain('transport');
    // The count starts over only after the connection stayed open one heartbeat interval.
    expect(c.reconnectAttempt).toBe(2);
    await waitFor(() => c.reconnectAttempt === 0, { what: 'the count reset after a heartbeat' });
    badTokens = 1;
    harness.disconnectUser('alice', 1001);
    await waitFor(() => c.state === 'open' && attempts.length === 4, { what: 'two more attempts' });
    expect(attempts).toEqual([0, 1, 0, 1]);
  });

  it('asks a url function before every attempt and resumes with its cursor on the URL it gets', async () => {
    const { harness, client } = await setup();
    // The first URL names a port where nothing listens (this gateway's port,
    // closed once it is known): the client must move on to the next answer.
    const dead = await startHarness();
    const deadUrl = dead.wsUrl;
    await dead.close();
    const asked: string[] = [];
    const answers = [deadUrl, 'http://not-a-socket/', harness.wsUrl];
    const c = client('roamer', {
      url: () => {
        const next = answers[Math.min(asked.length, answers.length - 1)] as string;
        asked.push(next);
        return next;
      },
    });
    const errors: string[] = [];
    c.on('error', (e) => errors.push(e.message));
    const seqs = seqsOf(c);
    await c.connect();
    expect(asked.slice(0, 3)).toEqual(answers);
    expect(errors.some((m) => /option url must use ws: or wss:/.test(m))).toBe(true);
    await publishTicks(harness, 'roamer', 3);
    await waitFor(() => seqs.length === 3, { what: 'three events' });
    // A reconnect asks again; the cursor rides on the URL the function gave.
    const welcomes = welcomesOf(c);
    c.reconnect();
    await waitFor(() => welcomes.length === 1, { what: 'a second welcome' });
    expect(asked.length).toBe(4);
    expect(welcomes[0]?.replay).toMatchObject({ from: 4, count: 0, gap: false });
    expect(seqs).toEqual([1, 2, 3]);
  });
});

describe('client SDK against the gateway: acks, token refresh, stopping', () => {
  it('acks reach the server: critical at once, others in a batch', async () => {
    const { harness, client } = await setup();
    const c = client('alice', { ack: { delayMs: 60_000, maxBatch: 1000 } });
    const seqs = seqsOf(c);
    await c.connect();
    const acked = () => harness.gateway.connections('alice')[0]?.ackedSeq;
    await publishTicks(harness, 'alice', 3);
    await waitFor(() => seqs.length === 3);
    expect(harness.gateway.connections('alice')[0]?.sentSeq).toBe(3);
    expect(acked()).toBe(0); // batched: nothing acked for a minute
    await harness.publish('alice', { event: 'tick', critical: true });
    await waitFor(() => acked() === 4, { what: 'the critical event acked at once' });

    const batched = client('bob', { ack: { delayMs: 50 } });
    await batched.connect();
    await publishTicks(harness, 'bob', 3);
    await waitFor(() => harness.gateway.connections('bob')[0]?.ackedSeq === 3, {
      what: 'the batch acked after its delay',
    });
  });

  it('stays connected past its first token expiry by refreshing', async () => {
    const { harness, client } = await setup({}, { leewaySeconds: 0 });
    const tokens: string[] = [];
    const c = client('alice', {
      token: async () => {
        const token = await harness.mintToken('alice', 3);
        tokens.push(token);
        return token;
      },
      refreshLeadMs: 2000,
    });
    let refreshes = 0;
    c.on('refreshed', () => refreshes++);
    await c.connect();
    const connectionId = c.welcome?.connectionId;
    const firstExpiry = decodeJwt(tokens[0]!).exp! * 1000;
    await waitFor(() => refreshes >= 1 && Date.now() > firstExpiry + 1000, {
      timeoutMs: 10_000,
      what: 'a refresh, and the first token past its expiry',
    });
    expect(c.state).toBe('open');
    expect(c.welcome?.connectionId).toBe(connectionId);
    // The same server-side connection, still there.
    expect(harness.gateway.connections('alice').map((s) => s.connectionId)).toEqual([connectionId]);
    await harness.publish('alice', { event: 'tick' });
    await waitFor(() => c.recentEvents().length === 1, { what: 'an event after the expiry' });
  });

  it('control: without a refresh the same gateway closes the connection with 4401 at expiry', async () => {
    // Proves the test above can fail: the gateway does enforce `exp` with leeway 0.
    const { harness } = await setup({}, { leewaySeconds: 0 });
    const token = await harness.mintToken('alice', 2);
    const socket = new WebSocket(harness.wsUrl, { headers: { Authorization: `Bearer ${token}` } });
    socket.on('error', () => undefined);
    // Answers the heartbeat, so that only the token's expiry can close it.
    socket.on('message', (data) => {
      if (String(data).includes('"type":"ping"')) socket.send('{"type":"pong"}');
    });
    const closed = await new Promise<number>((resolve) => socket.on('close', resolve));
    expect(closed).toBe(4401);
    expect(Date.now()).toBeGreaterThanOrEqual(decodeJwt(token).exp! * 1000);
  });

  it('stops on 4403 and does not reconnect', async () => {
    const { harness, client } = await setup();
    const c = client('alice');
    await c.connect();
    const closed = new Promise((resolve) => c.once('closed', resolve));
    harness.disconnectUser('alice', 4403);
    expect(await closed).toMatchObject({ code: 4403, advice: 'stop' });
    expect(c.state).toBe('closed');
    await waitFor(() => harness.gateway.connections('alice').length === 0);
    // Another client of the same user connects and is served: nothing came back in between.
    const other = client('alice', { auth: 'header' });
    await other.connect();
    expect(harness.gateway.connections('alice')).toHaveLength(1);
    expect(c.state).toBe('closed');
  });

  it('stops on 4409 when a newer connection of the same user evicts it, so the two do not fight', async () => {
    const { harness, client } = await setup({
      limits: { maxConnectionsPerUser: 1, userConnectionPolicy: 'evict-oldest' },
    });
    const older = client('alice');
    await older.connect();
    const closed = new Promise((resolve) => older.once('closed', resolve));
    const newer = client('alice');
    const seqs = seqsOf(newer);
    const newest = await newer.connect();
    expect(await closed).toMatchObject({ code: 4409, advice: 'stop' });
    expect(older.state).toBe('closed');
    await harness.publish('alice', { event: 'tick' });
    await waitFor(() => seqs.length === 1, { what: 'the event on the newer connection' });
    expect(harness.gateway.connections('alice').map((s) => s.connectionId)).toEqual([
      newest.connectionId,
    ]);
    expect(newer.state).toBe('open');
  });
});
