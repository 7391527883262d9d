/**
 * The limits of PROTOCOL.md section 3 that bound what one client address, one
 * node, one user's history and one publish may take, each driven past its
 * bound: connections per IP (429) and per node (503), who decides the client
 * IP (trusted proxies), history size (gap), event data size (413), batch size
 * (400, nothing published) and the live buffer of a connection in replay.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { HistoryRead, ReadCursor } from '../../src/broker/broker.js';
import { MemoryBroker } from '../../src/broker/memory-broker.js';
import { GatewayError } from '../../src/errors.js';
import { createGateway } from '../../src/gateway/gateway.js';
import type { JsonValue } from '../../src/protocol/frames.js';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';
import { expectRefusal, TestClient } from '../helpers/test-client.js';
import { waitFor } from '../helpers/wait-for.js';

/** Never called: the gateway refuses its options before it authenticates anyone. */
const NO_AUTH = {
  verify: (): Promise<never> => Promise.reject(new Error('not used')),
};

let h: Harness;
afterEach(async () => h?.close());

async function refusalFor(userId: string, headers: Record<string, string> = {}) {
  return expectRefusal(h.wsUrl, { token: await h.token(userId), headers });
}

async function rejection(promise: Promise<unknown>): Promise<GatewayError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GatewayError);
  return error as GatewayError;
}

describe('connections per client IP', () => {
  it('the 4th connection from one address is refused with 429; a slot freed admits the next', async () => {
    h = await startGateway({ limits: { maxConnectionsPerIp: 3 } });
    // Different users: only the per-IP count can refuse.
    const open = await Promise.all(['ip-a', 'ip-b', 'ip-c'].map((u) => h.connect(u)));
    const refused = await refusalFor('ip-d');
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('too_many_connections');
    expect(refused.headers['retry-after']).toBeDefined();
    expect(h.gateway.connectionCount).toBe(3);

    open[0]?.close();
    await waitFor(() => h.gateway.connectionCount === 2, { what: 'the slot given back' });
    const admitted = await h.connect('ip-d');
    expect((await admitted.welcome()).userId).toBe('ip-d');
  });

  it('the node-wide limit answers 503 unavailable with Retry-After', async () => {
    h = await startGateway({ limits: { maxConnections: 2 } });
    await h.connect('node-a');
    await h.connect('node-b');
    const refused = await refusalFor('node-c');
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('unavailable');
    expect(refused.headers['retry-after']).toBeDefined();
  });
});

describe('client IP and trusted proxies', () => {
  it('X-Forwarded-For from an untrusted peer is ignored: every connection counts as 127.0.0.1', async () => {
    h = await startGateway({ limits: { maxConnectionsPerIp: 3 } });
    for (const [i, user] of ['xff-a', 'xff-b', 'xff-c'].entries()) {
      await h.connect(user, { headers: { 'x-forwarded-for': `203.0.113.${i + 1}` } });
      expect(h.gateway.connections(user)[0]?.remoteAddress).toBe('127.0.0.1');
    }
    const refused = await refusalFor('xff-d', { 'x-forwarded-for': '198.51.100.7' });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('too_many_connections');
  });

  it('X-Forwarded-For from a trusted proxy gives each forwarded address its own budget', async () => {
    h = await startGateway({
      trustedProxies: ['127.0.0.1'],
      limits: { maxConnectionsPerIp: 3 },
    });
    // Five clients behind the proxy: more than 3 connections from 127.0.0.1 itself.
    for (let i = 1; i <= 5; i++) {
      const user = `behind-${i}`;
      await h.connect(user, { headers: { 'x-forwarded-for': `203.0.113.${i}` } });
      expect(h.gateway.connections(user)[0]?.remoteAddress).toBe(`203.0.113.${i}`);
    }
    // One forwarded address still has its own limit of 3.
    for (const user of ['same-1', 'same-2']) {
      await h.connect(user, { headers: { 'x-forwarded-for': '203.0.113.1' } });
    }
    const refused = await refusalFor('same-3', { 'x-forwarded-for': '203.0.113.1' });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('too_many_connections');
  });

  it('a client cannot pick its address by prepending hops: the rightmost untrusted hop counts', async () => {
    h = await startGateway({ trustedProxies: ['127.0.0.1', '10.0.0.9'] });
    await h.connect('chain', {
      headers: { 'x-forwarded-for': '6.6.6.6, 198.51.100.20, 10.0.0.9' },
    });
    expect(h.gateway.connections('chain')[0]?.remoteAddress).toBe('198.51.100.20');
  });
});

describe('history bound', () => {
  it('past historySize the oldest events are dropped and a resume reports the gap', async () => {
    h = await startGateway({ historySize: 5 });
    const results = [];
    for (let n = 1; n <= 8; n++) {
      results.push(await h.gateway.publish('hist', { event: 'e', data: { user: 'hist', n } }));
    }
    const epoch = results[0]?.epoch as string;
    const client = await h.connect('hist', { query: { lastSeq: 1, epoch } });
    const welcome = await client.welcome();
    expect(welcome.replay).toEqual({ from: 4, count: 5, gap: true });
    await client.waitForEvents(5);
    expect(client.seqs()).toEqual([4, 5, 6, 7, 8]);
    // A cursor inside the window has no gap.
    const inside = await h.connect('hist', { query: { lastSeq: 5, epoch } });
    expect((await inside.welcome()).replay).toEqual({ from: 6, count: 3, gap: false });
  });
});

describe('publish limits', () => {
  it('event data over maxDataBytes is refused with 413 payload_too_large and not published', async () => {
    h = await startGateway({ limits: { maxDataBytes: 100 } });
    const client = await h.connect('big');
    const error = await rejection(
      h.gateway.publish('big', { event: 'e', data: { text: 'x'.repeat(200) } }),
    );
    expect(error.status).toBe(413);
    expect(error.code).toBe('payload_too_large');
    // Exactly at the limit is accepted, and it is the first event of the stream.
    const atLimit = { text: 'x'.repeat(100 - '{"text":""}'.length) };
    expect(JSON.stringify(atLimit).length).toBe(100);
    expect((await h.gateway.publish('big', { event: 'e', data: atLimit })).seq).toBe(1);
    await client.waitForEvents(1);
    expect(client.seqs()).toEqual([1]);
  });

  it('data nested past maxDataDepth is refused with 400 naming data by publish, batch and broadcast', async () => {
    h = await startGateway();
    const client = await h.connect('deep');
    // 200 000 arrays deep: JSON.stringify alone overflows the stack on it.
    const deep = JSON.parse(`${'['.repeat(200_000)}0${']'.repeat(200_000)}`) as JsonValue;
    const refusals = {
      publish: await rejection(h.gateway.publish('deep', { event: 'e', data: deep })),
      batch: await rejection(h.gateway.publishBatch([{ userId: 'deep', event: 'e', data: deep }])),
      broadcast: await rejection(h.gateway.broadcast('e', deep)),
    };
    for (const [kind, error] of Object.entries(refusals)) {
      expect({ kind, status: error.status, code: error.code }).toEqual({
        kind,
        status: 400,
        code: 'bad_request',
      });
      expect(error.message).toContain('more than 64 deep');
    }
    expect(refusals.publish.field).toBe('data');
    expect(refusals.batch.field).toBe('events[0].data');
    expect(refusals.broadcast.field).toBe('data');
    // A cyclic object of the in-process API is refused the same way, not looped over.
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const cycle = await rejection(
      h.gateway.publish('deep', { event: 'e', data: cyclic as JsonValue }),
    );
    expect(cycle.field).toBe('data');
    // 64 deep, the default limit, is published.
    const atLimit = JSON.parse(`${'['.repeat(64)}0${']'.repeat(64)}`) as JsonValue;
    expect((await h.gateway.publish('deep', { event: 'e', data: atLimit })).seq).toBe(1);
    await client.waitForEvents(1);
    expect(client.seqs()).toEqual([1]);
  });

  it('maxDataDepth is a limit of its own, and shared references cannot blow up the check', async () => {
    h = await startGateway({ limits: { maxDataDepth: 2 } });
    expect((await h.gateway.publish('d', { event: 'e', data: [[1]] })).seq).toBe(1);
    expect((await rejection(h.gateway.publish('d', { event: 'e', data: [[[1]]] }))).message).toBe(
      'data nests arrays and objects more than 2 deep',
    );
    await h.close();
    // 40 levels, each object holding the one below twice: 2^40 paths, 80 objects.
    h = await startGateway();
    let shared: JsonValue = { leaf: 1 };
    for (let i = 0; i < 40; i++) shared = { a: shared, b: shared };
    const error = await rejection(h.gateway.publish('d', { event: 'e', data: shared }));
    expect({ status: error.status, field: error.field }).toEqual({ status: 413, field: 'data' });
    expect(() => createGateway({ authenticator: NO_AUTH, limits: { maxDataDepth: 0 } })).toThrow(
      'option limits.maxDataDepth must be a positive integer, got 0',
    );
  });

  it('a batch over maxBatchEvents is refused with 400 and publishes nothing', async () => {
    h = await startGateway({ limits: { maxBatchEvents: 3 } });
    const batch = ['b1', 'b2', 'b1', 'b2'].map((userId) => ({ userId, event: 'e' }));
    const error = await rejection(h.gateway.publishBatch(batch));
    expect(error.status).toBe(400);
    expect(error.code).toBe('bad_request');
    const accepted = await h.gateway.publishBatch(batch.slice(0, 3));
    expect(accepted.map((r) => ('seq' in r ? r.seq : null))).toEqual([1, 1, 2]);
  });
});

/** A MemoryBroker whose history reads can be held: the read is taken, its answer waits. */
class HeldReadBroker extends MemoryBroker {
  reads = 0;
  held: (() => void)[] = [];
  hold = false;

  override async readHistory(userId: string, cursor: ReadCursor): Promise<HistoryRead> {
    const read = await super.readHistory(userId, cursor);
    this.reads++;
    if (this.hold) await new Promise<void>((resolve) => this.held.push(resolve));
    return read;
  }

  release(): void {
    this.hold = false;
    for (const resolve of this.held.splice(0)) resolve();
  }
}

describe('live buffer while a replay is read (maxReplayBuffer)', () => {
  for (const [published, reads] of [
    [3, 1],
    [10, 2],
  ] as const) {
    it(`${published} live events during a held read with a buffer of 3: ${reads} history read(s), all delivered in order`, async () => {
      const broker = new HeldReadBroker();
      h = await startGateway({ broker, limits: { maxReplayBuffer: 3 } });
      broker.hold = true;
      const client = TestClient.open(h.wsUrl, { token: await h.token('buffered') });
      await waitFor(() => broker.held.length === 1, { what: 'the held history read' });
      for (let n = 1; n <= published; n++) {
        await h.gateway.publish('buffered', { event: 'e', data: { user: 'buffered', n } });
      }
      broker.release();
      await client.waitForEvents(published);
      expect(client.seqs()).toEqual(Array.from({ length: published }, (_, i) => i + 1));
      // Past the buffer the overflow is not kept but re-read from history.
      expect(broker.reads).toBe(reads);
      client.terminate();
    });
  }
});
