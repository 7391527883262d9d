/**
 * The client's lifecycle where no gateway is needed: option checks, a token
 * provider that fails, and a port where nobody listens (a real refused TCP
 * connection on 127.0.0.1). Behaviour with a gateway is in test/e2e/client-sdk.test.ts.
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { AgentSocketClient, ClientClosedError } from '../../src/client/index.js';
import type { ClientError, ClientState } from '../../src/client/index.js';
import { waitFor } from '../helpers/wait-for.js';

const clients: AgentSocketClient[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

function track(client: AgentSocketClient) {
  clients.push(client);
  const states: ClientState[] = [];
  const errors: ClientError[] = [];
  client.on('state', ({ state }) => states.push(state));
  client.on('error', (error) => errors.push(error));
  return { states, errors };
}

/** A port on 127.0.0.1 where nothing listens: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('AgentSocketClient without a gateway', () => {
  it('checks its options up front, naming the bad one', () => {
    const ok = { url: 'ws://127.0.0.1:1/v1/ws', token: 't' };
    expect(() => new AgentSocketClient({ ...ok, url: '/v1/ws' })).toThrow(/option url/);
    expect(() => new AgentSocketClient({ ...ok, url: 'http://x/v1/ws' })).toThrow(/ws: or wss:/);
    expect(() => new AgentSocketClient({ ...ok, url: 5 as unknown as string })).toThrow(
      /option url is required/,
    );
    // A url function is only called when connecting, never by the constructor.
    let calls = 0;
    expect(() => new AgentSocketClient({ ...ok, url: () => (calls++, 'bad') })).not.toThrow();
    expect(calls).toBe(0);
    expect(() => new AgentSocketClient({ ...ok, token: 5 as unknown as string })).toThrow(
      /option token/,
    );
    expect(() => new AgentSocketClient({ ...ok, auth: 'cookie' as unknown as 'header' })).toThrow(
      /option auth/,
    );
    expect(() => new AgentSocketClient({ ...ok, refreshLeadMs: -1 })).toThrow(/refreshLeadMs/);
    const client = new AgentSocketClient(ok);
    expect(client.state).toBe('closed');
    expect(client.cursor).toBeNull();
  });

  it('retries a failing token provider with backoff, and never puts the token in an error', async () => {
    let calls = 0;
    const client = new AgentSocketClient({
      url: 'ws://127.0.0.1:1/v1/ws',
      token: () => {
        calls++;
        throw new Error('login service down');
      },
      WebSocket,
      backoff: () => 1,
    });
    const { states, errors } = track(client);
    void client.connect().catch(() => {});
    await waitFor(() => calls >= 3, { what: 'three token attempts' });
    expect(states.slice(0, 2)).toEqual(['connecting', 'reconnecting']);
    expect(errors[0]).toMatchObject({ kind: 'token', message: 'the token provider failed' });
    expect(client.reconnectAttempt).toBeGreaterThanOrEqual(2);
  });

  it('counts attempts 0, 1, 2, … against a refused port and gives up after maxReconnectAttempts', async () => {
    const port = await closedPort();
    const attempts: number[] = [];
    const client = new AgentSocketClient({
      url: `ws://127.0.0.1:${port}/v1/ws`,
      token: 'secret-token-value',
      WebSocket,
      backoff: (attempt) => (attempts.push(attempt), 1),
      maxReconnectAttempts: 4,
    });
    const { states, errors } = track(client);
    const connected = client.connect();
    await expect(connected).rejects.toBeInstanceOf(ClientClosedError);
    expect(attempts).toEqual([0, 1, 2, 3]);
    expect(states.at(-1)).toBe('closed');
    expect(client.state).toBe('closed');
    expect(errors.some((e) => e.kind === 'transport')).toBe(true);
    expect(JSON.stringify(errors.map((e) => e.message))).not.toContain('secret-token-value');
  });

  it('loads the ws package itself when Node has no global WebSocket', async () => {
    expect((globalThis as { WebSocket?: unknown }).WebSocket).toBeUndefined();
    const port = await closedPort();
    const client = new AgentSocketClient({
      url: `ws://127.0.0.1:${port}/v1/ws`,
      token: 't',
      maxReconnectAttempts: 1,
      backoff: () => 1,
    });
    const { errors } = track(client);
    await expect(client.connect()).rejects.toBeInstanceOf(ClientClosedError);
    // It got as far as a refused TCP connection: the constructor was found and used.
    expect(errors.map((e) => e.message).join('\n')).toMatch(/ECONNREFUSED/);
  });

  it('close() while reconnecting stops for good: no more attempts', async () => {
    const port = await closedPort();
    let tokens = 0;
    const client = new AgentSocketClient({
      url: `ws://127.0.0.1:${port}/v1/ws`,
      token: () => (tokens++, 't'),
      WebSocket,
      backoff: () => 5,
    });
    const { states } = track(client);
    const connected = client.connect();
    await waitFor(() => tokens >= 2, { what: 'a reconnect attempt' });
    client.close();
    await expect(connected).rejects.toMatchObject({ code: 1000 });
    const after = tokens;
    // Another client's full connect-fail cycle on the same port shows time has passed.
    const probe = new AgentSocketClient({
      url: `ws://127.0.0.1:${port}/v1/ws`,
      token: 't',
      WebSocket,
      backoff: () => 5,
      maxReconnectAttempts: 3,
    });
    await probe.connect().catch(() => {});
    expect(tokens).toBe(after);
    expect(states.at(-1)).toBe('closed');
  });
});
