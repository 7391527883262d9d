/**
 * End-to-end tests of the client SDK against the real gateway on 127.0.0.1.
 *
 * TODO(gateway): these are skipped until the gateway lands. To enable them,
 * implement `startHarness()` with `createGateway` + a JWT authenticator on an
 * HTTP server listening on port 0 (short heartbeats, an HS256 secret), then
 * change `describe.skip` to `describe`. The tests only use the harness
 * interface below and the public SDK, so nothing else should need to change.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { AgentSocketClient } from '../../src/client/index.js';
import type { AgentSocketClientOptions, StorageLike } from '../../src/client/index.js';
import type { EventInput } from '../../src/protocol/index.js';
import { runSimulatedAgent } from '../../src/demo/simulated-agent.js';
import { waitFor } from '../helpers/wait-for.js';

interface Harness {
  /** `ws://127.0.0.1:<port>/v1/ws` */
  wsUrl: string;
  /** A user token for `userId`, valid for `ttlSeconds` (default 3600). */
  mintToken(userId: string, ttlSeconds?: number): Promise<string>;
  publish(userId: string, input: EventInput): Promise<{ seq: number }>;
  /** Closes every connection of the user with `code` (default 4401). */
  disconnectUser(userId: string, code?: number): number;
  close(): Promise<void>;
}

async function startHarness(): Promise<Harness> {
  throw new Error('TODO(gateway): start the real gateway on port 0 here');
}

class MapStorage implements StorageLike {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup() {
  const harness = await startHarness();
  cleanups.push(() => harness.close());
  const client = (userId: string, options: Partial<AgentSocketClientOptions> = {}) => {
    const c = new AgentSocketClient({
      url: harness.wsUrl,
      token: () => harness.mintToken(userId),
      WebSocket,
      backoff: () => 10,
      ...options,
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

describe.skip('client SDK against the gateway (TODO: enable when the gateway lands)', () => {
  it('connects with the token as a subprotocol and as a header', async () => {
    const { client } = await setup();
    const browserLike = client('alice');
    expect((await browserLike.connect()).userId).toBe('alice');
    const nodeLike = client('alice', { auth: 'header' });
    expect((await nodeLike.connect()).userId).toBe('alice');
    expect(browserLike.state).toBe('open');
  });

  it('follows a run to agent_completed, in order', async () => {
    const { harness, client } = await setup();
    const c = client('alice');
    await c.connect();
    const run = c.run('r1');
    const done = runSimulatedAgent(harness.publish, 'alice', 'hi', {
      tokenDelayMs: 0,
      runId: 'r1',
    });
    const names: string[] = [];
    for await (const e of run) names.push(e.event);
    await done;
    expect(names[0]).toBe('agent_started');
    expect(names.at(-1)).toBe('agent_completed');
    const completed = await c.waitForEvent('r1', 'agent_completed');
    expect(completed.data.status).toBe('succeeded');
  });

  it('resumes after a drop: every event once, in order, including those published while away', async () => {
    const { harness, client } = await setup();
    const c = client('alice');
    const seqs = seqsOf(c);
    await c.connect();
    for (let i = 0; i < 50; i++) await harness.publish('alice', { event: 'tick', data: i });
    c.reconnect();
    for (let i = 50; i < 100; i++) await harness.publish('alice', { event: 'tick', data: i });
    await waitFor(() => seqs.length >= 100, { what: '100 events' });
    expect(seqs).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(c.cursor?.lastSeq).toBe(100);
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

  it('stops on 4403 and does not reconnect', async () => {
    const { harness, client } = await setup();
    const c = client('alice');
    await c.connect();
    const closed = new Promise((resolve) => c.once('closed', resolve));
    harness.disconnectUser('alice', 4403);
    expect(await closed).toMatchObject({ code: 4403, advice: 'stop' });
    expect(c.state).toBe('closed');
  });

  it('resumes from a persisted cursor in a new client (a page reload)', async () => {
    const { harness, client } = await setup();
    const storage = new MapStorage();
    const first = client('alice', { storage });
    const seqs = seqsOf(first);
    await first.connect();
    for (let i = 0; i < 3; i++) await harness.publish('alice', { event: 'tick' });
    await waitFor(() => seqs.length === 3);
    first.close(); // flushes the ack and the cursor
    await harness.publish('alice', { event: 'tick' });
    const reloaded = client('alice', { storage });
    const after = seqsOf(reloaded);
    await reloaded.connect();
    await waitFor(() => after.length === 1, { what: 'the event published while away' });
    expect(after).toEqual([4]);
  });

  it('keeps at most recentEventsLimit recent events, the newest ones', async () => {
    const { harness, client } = await setup();
    const c = client('alice', { recentEventsLimit: 5 });
    const seqs = seqsOf(c);
    await c.connect();
    for (let i = 0; i < 12; i++) await harness.publish('alice', { event: 'tick' });
    await waitFor(() => seqs.length === 12);
    expect(c.recentEvents().map((e) => e.seq)).toEqual([8, 9, 10, 11, 12]);
  });

  it('stays connected past its first token expiry by refreshing', async () => {
    const { harness, client } = await setup();
    const c = client('alice', { token: () => harness.mintToken('alice', 3), refreshLeadMs: 2000 });
    let refreshes = 0;
    c.on('refreshed', () => refreshes++);
    await c.connect();
    const connectionId = c.welcome?.connectionId;
    const firstExpiry = Date.now() + 3000;
    await waitFor(() => refreshes >= 1 && Date.now() > firstExpiry + 1000, {
      timeoutMs: 10_000,
      what: 'a refresh, and the first token past its expiry',
    });
    expect(c.state).toBe('open');
    expect(c.welcome?.connectionId).toBe(connectionId);
  });
});
