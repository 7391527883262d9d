/**
 * RedisBroker beyond the contract: per-node subscriptions (ref-counted, only
 * for users with a connection here, bounded), options checked up front, and
 * the key layout with its hash tags.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BrokerUnavailableError } from '../../src/broker/broker.js';
import { RedisBroker, type RedisBrokerOptions } from '../../src/broker/redis/redis-broker.js';
import { encodeEvent, type EncodedEvent } from '../../src/protocol/event-frame.js';
import { validateEventInput } from '../../src/protocol/event-input.js';
import { RecordingHandlers } from '../helpers/recording-handlers.js';
import { redisServerMissing } from '../helpers/redis-server.js';
import { useRedisSuite, type RedisSuite } from '../helpers/redis-suite.js';
import { waitFor } from '../helpers/wait-for.js';

function note(i: number): EncodedEvent {
  const result = validateEventInput({ event: 'note', data: { i } }, 1024);
  if (!result.ok) throw new Error(result.failure.message);
  return encodeEvent(result.value);
}

describe('RedisBroker options', () => {
  const url = 'redis://127.0.0.1:1';
  it.each<[string, Partial<RedisBrokerOptions>, RegExp]>([
    ['a url that is not redis://', { url: 'http://x' }, /url/],
    ['a key prefix with a brace', { keyPrefix: 'a{b}' }, /keyPrefix/],
    ['a zero history size', { historySize: 0 }, /historySize/],
    ['a fractional ttl', { historyTtlMs: 1.5 }, /historyTtlMs/],
    ['a negative command timeout', { commandTimeoutMs: -1 }, /commandTimeoutMs/],
    ['a zero subscription limit', { maxSubscriptions: 0 }, /maxSubscriptions/],
    ['a node id with a space', { nodeId: 'node 1' }, /nodeId/],
  ])('refuses %s', (_label, options, message) => {
    expect(() => new RedisBroker({ url, ...options })).toThrow(message);
  });

  it('starts while Redis cannot be reached: unhealthy, and every step rejects with BrokerUnavailableError', async () => {
    const broker = new RedisBroker({ url, commandTimeoutMs: 500 });
    await broker.start(new RecordingHandlers());
    try {
      expect(broker.health().healthy).toBe(false);
      await expect(broker.publish('alice', note(1))).rejects.toBeInstanceOf(BrokerUnavailableError);
      await expect(broker.subscribe('alice')).rejects.toBeInstanceOf(BrokerUnavailableError);
    } finally {
      await broker.close();
    }
  });
});

describe.skipIf(redisServerMissing)('RedisBroker nodes', () => {
  const redis = useRedisSuite();
  const node = (options: Partial<RedisBrokerOptions> = {}): ReturnType<RedisSuite['node']> =>
    redis.node(options);

  const user = (): string => `node-${randomBytes(4).toString('hex')}`;

  async function subscribers(userId: string): Promise<number> {
    const reply = await redis.admin.pubsub('NUMSUB', `agentsocket:{u:${userId}}:events`);
    return Number(reply[1]);
  }

  it('subscribes a user channel once per node, and unsubscribes on the last release', async () => {
    const a = await node();
    const b = await node();
    const alice = user();
    expect(await subscribers(alice)).toBe(0);
    await a.broker.subscribe(alice);
    await a.broker.subscribe(alice);
    expect(await subscribers(alice)).toBe(1);
    await b.broker.subscribe(alice);
    expect(await subscribers(alice)).toBe(2);
    await a.broker.unsubscribe(alice);
    expect(await subscribers(alice)).toBe(2);
    await b.broker.publish(alice, note(1));
    await waitFor(() => a.handlers.seqsOf(alice).length >= 1, { what: 'seq 1 on a' });
    await a.broker.unsubscribe(alice);
    expect(await subscribers(alice)).toBe(1);
    expect(a.broker.subscriptionCount).toBe(0);
    await a.broker.unsubscribe(alice); // one too many: no effect
    expect(await subscribers(alice)).toBe(1);
  });

  it('refuses a subscription past maxSubscriptions, and takes it once one is released', async () => {
    const { broker } = await node({ maxSubscriptions: 2 });
    const [u1, u2, u3] = [user(), user(), user()];
    await broker.subscribe(u1);
    await broker.subscribe(u2);
    await broker.subscribe(u2); // a second connection of u2 needs no new slot
    await expect(broker.subscribe(u3)).rejects.toBeInstanceOf(BrokerUnavailableError);
    expect(broker.subscriptionCount).toBe(2);
    expect(await subscribers(u3)).toBe(0);
    await broker.unsubscribe(u1);
    await broker.subscribe(u3);
    expect(broker.subscriptionCount).toBe(2);
    expect(await subscribers(u3)).toBe(1);
  });

  it("keeps every key of a user in that user's hash slot, with TTLs", async () => {
    const { broker } = await node({ keyPrefix: 'layout', historyTtlMs: 60_000 });
    const alice = user();
    await broker.publish(alice, { ...note(1), id: 'one' });
    const keys = (await redis.admin.keys(`layout:{u:${alice}}:*`)).sort();
    expect(keys).toEqual([
      `layout:{u:${alice}}:hist`,
      `layout:{u:${alice}}:ids`,
      `layout:{u:${alice}}:meta`,
    ]);
    for (const key of keys) {
      const ttl = await redis.admin.pttl(key);
      expect(ttl).toBeGreaterThan(0);
      // The meta (epoch, seq, acked) outlives the events: 24 × historyTtlMs.
      expect(ttl).toBeLessThanOrEqual(key.endsWith(':meta') ? 24 * 60_000 : 60_000);
      if (key.endsWith(':meta')) expect(ttl).toBeGreaterThan(60_000);
    }
    // The idempotency hash holds one entry per stored event, and loses it with the event.
    expect(await redis.admin.hgetall(`layout:{u:${alice}}:ids`)).toEqual({ one: '1' });
  });

  it('drops idempotency ids with the events trimmed out of history', async () => {
    const { broker } = await node({ keyPrefix: 'trim', historySize: 3 });
    const alice = user();
    for (const i of [1, 2, 3, 4, 5]) await broker.publish(alice, { ...note(i), id: `id-${i}` });
    expect(Object.keys(await redis.admin.hgetall(`trim:{u:${alice}}:ids`)).sort()).toEqual([
      'id-3',
      'id-4',
      'id-5',
    ]);
    // id-1 left the window: publishing it again is a new event.
    const again = await broker.publish(alice, { ...note(1), id: 'id-1' });
    expect(again).toMatchObject({ seq: 6, duplicate: false });
  });
});
