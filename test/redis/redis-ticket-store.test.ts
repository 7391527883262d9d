/**
 * RedisTicketStore: a ticket issued on one node opens a socket on another,
 * once, within its 30 s; the ticket itself is never a key name.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { RedisTicketStore } from '../../src/auth/redis-ticket-store.js';
import { TICKET_TTL_MS } from '../../src/auth/ticket-store.js';
import { BrokerUnavailableError } from '../../src/broker/broker.js';
import { RedisServer, redisServerMissing } from '../helpers/redis-server.js';
import { useRedisSuite } from '../helpers/redis-suite.js';

describe.skipIf(redisServerMissing)('RedisTicketStore', () => {
  const redis = useRedisSuite();
  const stores: RedisTicketStore[] = [];

  afterAll(async () => {
    for (const store of stores) await store.close();
  });

  async function store(): Promise<RedisTicketStore> {
    const made = new RedisTicketStore({ url: redis.server.url });
    stores.push(made);
    await made.ready();
    return made;
  }

  it('consumes a ticket issued on another node exactly once', async () => {
    const nodeA = await store();
    const nodeB = await store();
    const issued = await nodeA.issue({ userId: 'alice', expiresAt: 123 });
    const [first, second] = await Promise.all([
      nodeB.consume(issued.ticket),
      nodeA.consume(issued.ticket),
    ]);
    const winners = [first, second].filter((user) => user !== null);
    expect(winners).toEqual([{ userId: 'alice', expiresAt: 123 }]);
    expect(await nodeB.consume(issued.ticket)).toBeNull();
  });

  it('stores a hash of the ticket with a 30 s expiry, never the ticket', async () => {
    const node = await store();
    const issued = await node.issue({ userId: 'bob', expiresAt: null });
    const keys = await redis.admin.keys('agentsocket:ticket:*');
    expect(keys.some((key) => key.includes(issued.ticket))).toBe(false);
    const ttls = await Promise.all(keys.map((key) => redis.admin.pttl(key)));
    for (const ttl of ttls) {
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(TICKET_TTL_MS);
    }
    expect(issued.expiresAt).toBeGreaterThan(Date.now());
    expect(await node.consume(issued.ticket)).toEqual({ userId: 'bob', expiresAt: null });
    expect(await node.consume('not-a-ticket')).toBeNull();
  });

  it('refuses with BrokerUnavailableError while Redis is down', async () => {
    const node = await store();
    const down = await RedisServer.start();
    const lonely = new RedisTicketStore({ url: down.url });
    await lonely.ready();
    await down.dispose();
    await expect(lonely.issue({ userId: 'carol', expiresAt: null })).rejects.toBeInstanceOf(
      BrokerUnavailableError,
    );
    await lonely.close();
    expect(await node.sweep(Date.now())).toBe(0);
  });
});
