/**
 * The client's timers and listeners under fake timers, against a scripted
 * socket (test/helpers/fake-websocket.ts): token refresh past setTimeout's
 * limit, a hanging token provider, close() from inside a listener, the
 * reconnect attempt counter, cursor persistence, and listener-limit cleanup.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AgentSocketClient } from '../../src/client/index.js';
import type { AgentSocketClientOptions, ClientError } from '../../src/client/index.js';
import { CloseCode, closeCodeInfo, reconnectAdvice } from '../../src/protocol/close-codes.js';
import { FakeWebSocket, tokenExpiringAt } from '../helpers/fake-websocket.js';
import { MapStorage } from '../helpers/map-storage.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const clients: AgentSocketClient[] = [];

beforeEach(() => {
  vi.useFakeTimers();
  FakeWebSocket.created.length = 0;
});
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  vi.useRealTimers();
});

function makeClient(options: Partial<AgentSocketClientOptions> = {}) {
  const client = new AgentSocketClient({
    url: 'ws://127.0.0.1:1/v1/ws',
    token: () => tokenExpiringAt(Date.now() + 3_600_000),
    WebSocket: FakeWebSocket,
    backoff: () => 10,
    ...options,
  });
  clients.push(client);
  const errors: ClientError[] = [];
  client.on('error', (error) => errors.push(error));
  return { client, errors };
}

/** Lets the token provider's promise settle and the socket be created. */
async function settle(): Promise<void> {
  await vi.advanceTimersByTimeAsync(0);
}

const refreshes = (socket: FakeWebSocket) => socket.sent.filter((f) => f.type === 'refresh');

describe('AgentSocketClient timers', () => {
  it('does not refresh a token valid for 30 days until its expiry comes near', async () => {
    const { client, errors } = makeClient({
      token: () => tokenExpiringAt(Date.now() + 30 * DAY_MS),
    });
    void client.connect();
    await settle();
    const socket = FakeWebSocket.last();
    socket.welcome({ heartbeatMs: 2 * DAY_MS });
    // Past setTimeout's 2^31-1 ms limit a timer fires after 1 ms: no refresh must go out early.
    await vi.advanceTimersByTimeAsync(60_000);
    expect(refreshes(socket)).toHaveLength(0);
    for (let day = 0; day < 29; day++) {
      socket.receive({ type: 'ping' });
      await vi.advanceTimersByTimeAsync(DAY_MS);
    }
    expect(refreshes(socket)).toHaveLength(0);
    // 30 s before the expiry (refreshLeadMs), exactly one refresh.
    socket.receive({ type: 'ping' });
    await vi.advanceTimersByTimeAsync(DAY_MS - 60_000 - 30_000 + 1000);
    expect(refreshes(socket)).toHaveLength(1);
    expect(errors).toEqual([]);
  });

  it('gives up on a token provider that never answers after connectTimeoutMs and retries', async () => {
    let calls = 0;
    const { client, errors } = makeClient({
      connectTimeoutMs: 1000,
      token: () => {
        calls++;
        return new Promise<string>(() => {});
      },
    });
    void client.connect().catch(() => {});
    await vi.advanceTimersByTimeAsync(999);
    expect(client.state).toBe('connecting');
    await vi.advanceTimersByTimeAsync(1);
    expect(errors[0]).toMatchObject({ kind: 'token' });
    expect(client.state).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(10);
    expect(calls).toBe(2);
    client.close();
    // Closing drops the pending token timeout too.
    expect(vi.getTimerCount()).toBe(0);
  });

  it('leaves no timer behind when a state, welcome or gap listener closes the client', async () => {
    for (const name of ['state', 'welcome', 'gap'] as const) {
      let failing = false;
      const { client, errors } = makeClient({
        token: () => {
          if (failing) throw new Error('provider down');
          return tokenExpiringAt(Date.now() + 3_600_000);
        },
      });
      const seen: string[] = [];
      client.on('welcome', () => seen.push('welcome'));
      if (name === 'state') {
        client.on('state', ({ state }) => state === 'open' && client.close());
      } else {
        client.on(name, () => client.close());
      }
      void client.connect().catch(() => {});
      await settle();
      FakeWebSocket.last().welcome({ replay: { from: 5, count: 0, gap: true } });
      expect(client.state).toBe('closed');
      if (name === 'state') expect(seen).toEqual([]);
      failing = true;
      expect(vi.getTimerCount()).toBe(0);
      await vi.advanceTimersByTimeAsync(2 * 3_600_000);
      expect(errors.filter((e) => e.kind === 'token')).toEqual([]);
    }
  });

  it('keeps counting attempts when the server welcomes and closes at once', async () => {
    const attempts: number[] = [];
    const { client } = makeClient({
      backoff: (attempt) => {
        attempts.push(attempt);
        return 10;
      },
    });
    void client.connect();
    await settle();
    for (let i = 0; i < 3; i++) {
      FakeWebSocket.last().welcome({ heartbeatMs: 5000 });
      FakeWebSocket.last().serverClose(CloseCode.SlowConsumer);
      await vi.advanceTimersByTimeAsync(10);
    }
    expect(attempts).toEqual([0, 1, 2]);
    // A connection that stays open for one heartbeat interval starts the count again.
    FakeWebSocket.last().welcome({ heartbeatMs: 5000 });
    await vi.advanceTimersByTimeAsync(5000);
    expect(client.reconnectAttempt).toBe(0);
    FakeWebSocket.last().serverClose(CloseCode.SlowConsumer);
    expect(attempts.at(-1)).toBe(0);
  });

  it('persists the cursor as soon as an event reaches the app', async () => {
    const storage = new MapStorage();
    const { client } = makeClient({ storage });
    const delivered: number[] = [];
    client.on('event', (e) => delivered.push(e.seq));
    void client.connect();
    await settle();
    const socket = FakeWebSocket.last();
    socket.welcome();
    socket.receive({ type: 'event', seq: 1, id: 'a', event: 'x', ts: 1, critical: false, data: 1 });
    expect(delivered).toEqual([1]);
    // The ack waits for its batch; the stored cursor does not.
    expect(socket.sent.filter((f) => f.type === 'ack')).toEqual([]);
    expect(JSON.parse(storage.getItem('agentsocket.cursor')!)).toEqual({ epoch: 'e1', lastSeq: 1 });
  });

  it('forgets the recent events of an old epoch', async () => {
    const { client } = makeClient();
    void client.connect();
    await settle();
    FakeWebSocket.last().welcome();
    FakeWebSocket.last().receive({
      type: 'event',
      seq: 1,
      id: 'a',
      event: 'agent_started',
      runId: 'r1',
      ts: 1,
      critical: false,
      data: {},
    });
    expect(client.recentEvents()).toHaveLength(1);
    client.reconnect();
    await vi.advanceTimersByTimeAsync(10);
    FakeWebSocket.last().welcome({ epoch: 'e2' });
    expect(client.recentEvents()).toEqual([]);
  });

  it('undoes waitForEvent, run and connect when the listener limit is reached', async () => {
    const { client } = makeClient({ maxListeners: 1 });
    // `error` and `closed` are full; `event` and `welcome` are not.
    client.on('closed', () => {});
    await expect(client.waitForEvent('r1', undefined, { timeoutMs: 100 })).rejects.toThrow(
      RangeError,
    );
    await expect(client.run('r1').next()).rejects.toThrow(RangeError);
    await expect(client.connect()).rejects.toThrow(RangeError);
    expect(client.listenerCount('event')).toBe(0);
    expect(client.listenerCount('welcome')).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(1000);
  });

  it('leaves a socket on its own with close code ClientReconnect (4000), which says reconnect', async () => {
    expect(closeCodeInfo(4000)?.name).toBe('ClientReconnect');
    expect(reconnectAdvice(CloseCode.ClientReconnect)).toBe('reconnect');
    const { client } = makeClient();
    void client.connect();
    await settle();
    const socket = FakeWebSocket.last();
    socket.welcome();
    client.reconnect();
    expect(socket.closedWith?.code).toBe(CloseCode.ClientReconnect);
  });
});
