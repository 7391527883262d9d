/**
 * Two real gateway processes (`agentsocket serve --redis-cluster …`) on a
 * Redis Cluster of 3 masters + 3 replicas, with users spread over every
 * shard: each user's sockets get their own events only, in order and once,
 * whichever node publishes; a socket resumes on the other node with its
 * cursor; a broadcast reaches both nodes; operators on one node list and
 * close the connections of the other; `/metrics` shows every shard.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeys } from '../../src/auth/api-keys.js';
import { mintDevToken } from '../../src/auth/dev-token.js';
import type { ConnectionSnapshot } from '../../src/gateway/gateway-types.js';
import type { BroadcastFrame, WelcomeFrame } from '../../src/protocol/frames.js';
import { startCliServer, type CliServer } from '../helpers/cli-process.js';
import { nodeApi, waitReadyz } from '../helpers/node-api.js';
import { RedisCluster } from '../helpers/redis-cluster.js';
import { redisServerMissing } from '../helpers/redis-server.js';
import { TestClient } from '../helpers/test-client.js';
import { waitFor } from '../helpers/wait-for.js';
import { usersOnEveryShard } from './cluster-fixtures.js';

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe.skipIf(redisServerMissing)('gateway processes on a Redis Cluster', () => {
  let cluster: RedisCluster;
  let a: CliServer;
  let b: CliServer;
  const secret = randomBytes(32).toString('base64url');
  const apiKey = ApiKeys.generate();
  const sockets: TestClient[] = [];

  beforeAll(async () => {
    cluster = await RedisCluster.start();
    const env = {
      AGENTSOCKET_JWT_SECRET: secret,
      AGENTSOCKET_API_KEYS: apiKey,
      // Two seeds of six: the nodes find the rest.
      AGENTSOCKET_REDIS_CLUSTER: cluster.urls.slice(0, 2).join(','),
    };
    [a, b] = await Promise.all([startCliServer([], env), startCliServer([], env)]);
    await Promise.all([a, b].map((node) => waitReadyz(node)));
  }, 60_000);
  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.terminate();
  });
  afterAll(async () => {
    await Promise.all([a, b].map((node) => node?.stop('SIGKILL')));
    await cluster?.dispose();
  });

  const api = nodeApi(apiKey);

  const open = async (
    node: CliServer,
    userId: string,
    query: Record<string, string | number> = {},
  ): Promise<TestClient> => {
    const socket = await TestClient.connect(node.wsUrl, {
      token: await mintDevToken({ secret, userId, ttlSeconds: 600 }),
      autoAck: true,
      query,
    });
    sockets.push(socket);
    return socket;
  };

  const publish = async (node: CliServer, userId: string, n: number): Promise<number> => {
    const answer = await api(node, 'POST', `/v1/users/${userId}/events`, {
      event: 'tick',
      id: `${userId}-${n}`,
      data: n,
    });
    expect(answer.status).toBe(202);
    return ((await answer.json()) as { seq: number }).seq;
  };

  it('every user, on every shard, gets its own events only, in order and once, from either node', async () => {
    const users = await usersOnEveryShard(cluster, 'gw', 2);
    const onA = await Promise.all(users.map((user) => open(a, user)));
    const onB = await Promise.all(users.map((user) => open(b, user)));
    await Promise.all(
      users.map(async (user, u) => {
        // Publishers on both nodes, alternating.
        for (let n = 0; n < 20; n++) await publish((n + u) % 2 === 0 ? a : b, user, n);
      }),
    );
    for (const [u, user] of users.entries()) {
      for (const socket of [onA[u]!, onB[u]!]) {
        await socket.waitForEvents(20, 10_000);
        expect(socket.seqs()).toEqual(range(1, 20));
        expect(socket.events().map((e) => e.id)).toEqual(range(0, 19).map((n) => `${user}-${n}`));
      }
    }
  });

  it('a socket resumes on the other node with its cursor: the rest, no gap', async () => {
    const [user] = await usersOnEveryShard(cluster, 'rz', 1);
    const first = await open(a, user!);
    const epoch = (await first.welcome()).epoch;
    for (let n = 0; n < 5; n++) await publish(b, user!, n);
    await first.waitForEvents(5, 10_000);
    first.terminate();
    for (let n = 5; n < 9; n++) await publish(a, user!, n);
    const resumed = await open(b, user!, { lastSeq: 5, epoch });
    const welcome: WelcomeFrame = await resumed.welcome();
    expect(welcome.epoch).toBe(epoch);
    expect(welcome.replay?.gap ?? false).toBe(false);
    await resumed.waitForEvents(4, 10_000);
    expect(resumed.seqs()).toEqual([6, 7, 8, 9]);
  });

  it('a broadcast through A reaches sockets on both nodes; operators on A list and close connections on B', async () => {
    const [user] = await usersOnEveryShard(cluster, 'op', 1);
    const here = await open(a, user!);
    const there = await open(b, user!);
    const last = await waitFor(
      async () => {
        const answer = await api(a, 'POST', '/v1/broadcast', { event: 'notice' });
        expect(answer.status).toBe(202);
        const body = (await answer.json()) as { id: string; connections: number };
        return body.connections === 2 ? body : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 200, what: 'a broadcast counted on both nodes' },
    );
    for (const socket of [here, there]) {
      await socket.waitForFrame(
        (frame): frame is BroadcastFrame => frame.type === 'broadcast' && frame.id === last.id,
      );
    }
    const listed = await waitFor(
      async () => {
        const answer = await api(a, 'GET', `/v1/users/${user!}/connections`);
        const { connections } = (await answer.json()) as { connections: ConnectionSnapshot[] };
        return connections.length === 2 ? connections : undefined;
      },
      { what: 'both connections listed on A' },
    );
    expect(new Set(listed.map((c) => c.node)).size).toBe(2);
    const answer = await api(a, 'DELETE', `/v1/users/${user!}/connections`);
    expect(await answer.json()).toEqual({ closed: 2 });
    expect((await there.waitForClose(10_000)).code).toBe(4401);
    expect((await here.waitForClose(10_000)).code).toBe(4401);
  });

  it('/metrics shows every shard up, and the slots they serve', async () => {
    const answer = await api(b, 'GET', '/metrics');
    const text = await answer.text();
    const up = [...text.matchAll(/^agentsocket_redis_shard_up\{shard="([^"]+)"\} 1$/gm)];
    expect(up.length).toBe(3);
    const slots = [...text.matchAll(/^agentsocket_redis_shard_slots\{shard="[^"]+"\} (\d+)$/gm)];
    expect(slots.reduce((sum, m) => sum + Number(m[1]), 0)).toBe(16_384);
  });
});
