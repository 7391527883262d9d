/**
 * RedisBroker's operator capabilities (the optional part of the Broker seam):
 * `control` reaches every node; the connection directory
 * (`putConnections` / `listConnections`) keeps each node's records apart,
 * forgets a node that stopped refreshing (a SIGKILLed one) and prunes itself;
 * node loads (`putNodeLoad` / `nodeLoads`) do the same for connection counts.
 * The clock is injected: expiry is checked without waiting for it.
 */
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import type { ConnectionRecord } from '../../src/broker/broker.js';
import { redisServerMissing } from '../helpers/redis-server.js';
import { useRedisSuite, type RedisSuite } from '../helpers/redis-suite.js';
import { waitFor } from '../helpers/wait-for.js';

const TTL = 30_000;

const record = (node: string, connectionId: string): ConnectionRecord => ({
  node,
  connectionId,
  snapshot: JSON.stringify({ connectionId, node, state: 'open' }),
});

const sorted = (records: ConnectionRecord[]): string[] =>
  records.map((r) => `${r.node}/${r.connectionId}`).sort();

describe.skipIf(redisServerMissing)('RedisBroker directory and control', () => {
  const redis = useRedisSuite();
  let now = 1_000_000;

  function node(nodeId: string): ReturnType<RedisSuite['node']> {
    return redis.node({ nodeId, clock: () => now });
  }

  it('each node replaces only its own records; an empty write removes them', async () => {
    const { broker: a } = await node('dir-a');
    const { broker: b } = await node('dir-b');
    await a.putConnections('una', [record('dir-a', 'c1'), record('dir-a', 'c2')], TTL);
    await b.putConnections('una', [record('dir-b', 'c3')], TTL);
    expect(sorted(await b.listConnections('una'))).toEqual(['dir-a/c1', 'dir-a/c2', 'dir-b/c3']);
    // A closed c1: A writes what it has now; B's record stays.
    await a.putConnections('una', [record('dir-a', 'c2')], TTL);
    expect(sorted(await a.listConnections('una'))).toEqual(['dir-a/c2', 'dir-b/c3']);
    await a.putConnections('una', [], TTL);
    await b.putConnections('una', [], TTL);
    expect(await a.listConnections('una')).toEqual([]);
    expect(await redis.admin.exists('agentsocket:{u:una}:conns')).toBe(0);
  });

  it('forgets a node that stopped refreshing once its records pass their deadline, and prunes them on the next write', async () => {
    const { broker: a } = await node('dir-a');
    const { broker: b } = await node('dir-b');
    await a.putConnections('vic', [record('dir-a', 'c1')], TTL);
    // B is "killed": it never writes again. A keeps refreshing.
    await b.putConnections('vic', [record('dir-b', 'c2'), record('dir-b', 'c3')], TTL);
    const key = 'agentsocket:{u:vic}:conns';
    const pttl = await redis.admin.pttl(key);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(TTL);
    now += TTL - 1;
    await a.putConnections('vic', [record('dir-a', 'c1')], TTL);
    expect(sorted(await a.listConnections('vic'))).toEqual(['dir-a/c1', 'dir-b/c2', 'dir-b/c3']);
    now += 2;
    expect(sorted(await a.listConnections('vic'))).toEqual(['dir-a/c1']);
    expect(await redis.admin.hlen(key)).toBe(3); // listed out, still stored ...
    await a.putConnections('vic', [record('dir-a', 'c1')], TTL);
    expect(await redis.admin.hlen(key)).toBe(1); // ... until the next write prunes them
  });

  it('delivers a control message to every node, and ignores malformed ones', async () => {
    const { broker: a, handlers: onA } = await node('ctl-a');
    const { handlers: onB } = await node('ctl-b');
    await redis.admin.publish(
      'agentsocket:control',
      '{"kind":"disconnect","userId":"x","code":1006}',
    );
    await redis.admin.publish(
      'agentsocket:control',
      '{"kind":"disconnect","userId":"a b","code":4401}',
    );
    await redis.admin.publish('agentsocket:control', 'not json');
    await a.control({ kind: 'disconnect', userId: 'wes', code: 4401 });
    await waitFor(() => onA.controls.length > 0 && onB.controls.length > 0, {
      what: 'the command on both nodes',
    });
    for (const handlers of [onA, onB]) {
      expect(handlers.controls).toEqual([{ kind: 'disconnect', userId: 'wes', code: 4401 }]);
    }
  });

  it("counts every live node's connections, and drops a node's figure past its deadline", async () => {
    const { broker: a } = await node('load-a');
    const { broker: b } = await node('load-b');
    await a.putNodeLoad(3, 5_000);
    await b.putNodeLoad(4, 5_000);
    expect(await a.nodeLoads()).toEqual(
      new Map([
        ['load-a', 3],
        ['load-b', 4],
      ]),
    );
    // B stops writing (killed); A writes on.
    now += 4_000;
    await a.putNodeLoad(5, 5_000);
    now += 2_000;
    expect(await b.nodeLoads()).toEqual(new Map([['load-a', 5]]));
    expect(await redis.admin.hexists('agentsocket:nodes', 'load-b')).toBe(1);
    await a.putNodeLoad(5, 5_000);
    expect(await redis.admin.hkeys('agentsocket:nodes')).toEqual(['load-a']);
  });
  it('never deletes a figure another node refreshed while this node was writing its own', async () => {
    const { broker: a } = await node('race-a');
    const { broker: b } = await node('race-b');
    await b.putNodeLoad(4, 5_000);
    now += 6_000; // B's figure is past its deadline: A's next write prunes it...
    // ...unless B writes again in between. The interleaving is forced: B
    // writes as soon as the first command of A's step is answered (a test hook
    // on A's command link). A step of several commands prunes on a stale read
    // there; one script leaves no such moment.
    const link = (a as unknown as { links: { command: Redis } }).links.command;
    const send = link.sendCommand.bind(link);
    let interleaved = false;
    const interleave = async (): Promise<void> => {
      interleaved = true;
      await b.putNodeLoad(4, 5_000);
    };
    Object.assign(link, {
      sendCommand: (...args: Parameters<Redis['sendCommand']>) => {
        // ioredis types the reply as unknown; it is the command's promise.
        const sent = send(...args) as Promise<unknown>;
        if (interleaved) return sent;
        return sent.then(
          async (reply: unknown) => (await interleave(), reply),
          async (error: unknown) => {
            await interleave();
            throw error;
          },
        );
      },
    });
    try {
      await a.putNodeLoad(3, 5_000);
    } finally {
      Object.assign(link, { sendCommand: send });
    }
    expect(interleaved).toBe(true);
    expect(await a.nodeLoads()).toEqual(
      new Map([
        ['race-a', 3],
        ['race-b', 4],
      ]),
    );
  });
});
