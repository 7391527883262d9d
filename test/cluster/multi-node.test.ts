/**
 * Several real gateway processes (`agentsocket serve --redis`) on one private
 * `redis-server`, and the faults of a multi-node deployment, seen from outside:
 * what a user's sockets receive and what publishers and operators are told.
 *
 * - a user on node A gets, in order and once, what is published through node B;
 * - tabs of one user on different nodes get the same sequence;
 * - node A SIGKILLed mid-stream: the SDK moves to node B with its cursor and
 *   the app sees every event once, in order;
 * - Redis SIGKILLed mid-stream and restarted from its AOF (`appendfsync always`):
 *   publishes in the outage get 503 and are retried; connected clients lose and
 *   repeat nothing; nodes become ready again by themselves;
 * - the pub/sub links cut (`CLIENT KILL TYPE pubsub`) mid-stream: history fills the hole;
 * - Redis restarted without persistence: open connections are closed with
 *   1012 and the next welcome says `gap: true` (a new epoch).
 *
 * "Once" is checked on the wire (a raw `TestClient`, no dedupe) where the
 * connection stays up, and at the app (the SDK's `event`) where it moves.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { AgentSocketClient } from '../../src/client/index.js';
import type { GapInfo } from '../../src/client/index.js';
import type { ConnectionSnapshot } from '../../src/gateway/gateway-types.js';
import type { BroadcastFrame, EventFrame, WelcomeFrame } from '../../src/protocol/frames.js';
import { startCluster, TickPublisher, type Cluster } from '../helpers/cli-cluster.js';
import type { CliServer } from '../helpers/cli-process.js';
import { redisServerMissing } from '../helpers/redis-server.js';
import { TestClient } from '../helpers/test-client.js';
import { waitFor } from '../helpers/wait-for.js';

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** What the app saw: every `event` the SDK emitted, and its welcomes and gaps. */
function record(client: AgentSocketClient): {
  events: EventFrame[];
  welcomes: WelcomeFrame[];
  gaps: GapInfo[];
} {
  const seen = {
    events: [] as EventFrame[],
    welcomes: [] as WelcomeFrame[],
    gaps: [] as GapInfo[],
  };
  client.on('event', (e) => seen.events.push(e));
  client.on('welcome', (w) => seen.welcomes.push(w));
  client.on('gap', (g) => seen.gaps.push(g));
  return seen;
}

/** Event ids in the order received. */
const idsOf = (events: readonly EventFrame[]): string[] => events.map((e) => e.id);

/** The stream a publisher built, in seq order: the ids it was told, sorted by seq. */
function expectedIds(publisher: TickPublisher): string[] {
  return [...publisher.accepted.entries()].sort((a, b) => a[1] - b[1]).map(([id]) => id);
}

function logSays(node: CliServer, msg: string): boolean {
  return node.logRecords().some((record) => record.msg === msg);
}

describe.skipIf(redisServerMissing)('a cluster of gateway processes on one Redis', () => {
  describe('three nodes, one Redis', () => {
    let cluster: Cluster;
    let a: CliServer;
    let b: CliServer;
    let c: CliServer;
    const sockets: TestClient[] = [];

    beforeAll(async () => {
      cluster = await startCluster({ nodes: 3 });
      [a, b, c] = cluster.nodes as [CliServer, CliServer, CliServer];
    });
    afterEach(() => {
      for (const socket of sockets.splice(0)) socket.terminate();
    });
    afterAll(async () => {
      await cluster?.stop();
    });

    const open = async (node: CliServer, userId: string): Promise<TestClient> => {
      const socket = await TestClient.connect(node.wsUrl, {
        token: await cluster.token(userId),
        autoAck: true,
      });
      sockets.push(socket);
      return socket;
    };

    it('a user on node A receives, in order and once, what is published through node B', async () => {
      const socket = await open(a, 'ann');
      const publisher = new TickPublisher(cluster, 'ann', () => b);
      for (let i = 0; i < 60; i++) expect(await publisher.publishNext()).toBe(true);
      await socket.waitForEvents(60, 10_000);
      expect(socket.seqs()).toEqual(range(1, 60));
      expect(socket.events().map((e) => e.data)).toEqual(range(0, 59));
      expect(idsOf(socket.events())).toEqual(expectedIds(publisher));
    });

    it('tabs on A and B get the same sequence while publishers on B and C race', async () => {
      const tabA = await open(a, 'tess');
      const tabB = await open(b, 'tess');
      const viaB = new TickPublisher(cluster, 'tess', () => b, 'b');
      const viaC = new TickPublisher(cluster, 'tess', () => c, 'c');
      // Two publishers at once on two nodes: Redis orders them into one stream.
      await Promise.all(
        [viaB, viaC].map(async (publisher) => {
          for (let i = 0; i < 25; i++) expect(await publisher.publishNext()).toBe(true);
        }),
      );
      await tabA.waitForEvents(50, 10_000);
      await tabB.waitForEvents(50, 10_000);
      expect(tabA.seqs()).toEqual(range(1, 50));
      expect(idsOf(tabB.events())).toEqual(idsOf(tabA.events()));
      // Both publishers' ids share one seq space: 50 distinct seqs, no id lost.
      const bySeq = new Map([...viaB.accepted, ...viaC.accepted].map(([id, seq]) => [seq, id]));
      expect(idsOf(tabA.events())).toEqual(range(1, 50).map((seq) => bySeq.get(seq)));
    });

    it('operators on any node list (with their node) and close (4401) the connections of every node', async () => {
      const onA = await open(a, 'olga');
      const onB = await open(b, 'olga');
      const nodeIdOf = async (node: CliServer): Promise<string> =>
        ((await (await cluster.api(node, 'GET', '/v1/stats')).json()) as { node: string }).node;
      const [idA, idB] = await Promise.all([nodeIdOf(a), nodeIdOf(b)]);
      expect(idA).not.toBe(idB);
      const list = async (node: CliServer): Promise<ConnectionSnapshot[]> => {
        const answer = await cluster.api(node, 'GET', '/v1/users/olga/connections');
        expect(answer.status).toBe(200);
        return ((await answer.json()) as { connections: ConnectionSnapshot[] }).connections;
      };
      // C holds none of them: everything it lists comes from the other nodes.
      const listed = await waitFor(
        async () => {
          const connections = await list(c);
          return connections.length === 2 ? connections : undefined;
        },
        { what: 'both connections listed on C' },
      );
      const byNode = new Map(listed.map((snapshot) => [snapshot.node, snapshot]));
      expect(byNode.get(idA)).toMatchObject({
        connectionId: (await onA.welcome()).connectionId,
        state: 'open',
      });
      expect(byNode.get(idB)).toMatchObject({ connectionId: (await onB.welcome()).connectionId });
      // A lists its own live and B's from the directory.
      expect((await list(a)).map((snapshot) => snapshot.node).sort()).toEqual([idA, idB].sort());

      const answer = await cluster.api(c, 'DELETE', '/v1/users/olga/connections');
      expect(answer.status).toBe(200);
      expect(await answer.json()).toEqual({ closed: 2 });
      expect((await onA.waitForClose(10_000)).code).toBe(4401);
      expect((await onB.waitForClose(10_000)).code).toBe(4401);
      await waitFor(async () => (await list(c)).length === 0, {
        what: 'the closed connections to leave the directory',
      });
    });

    it('a broadcast through C reaches the sockets of A and B, and counts them', async () => {
      const sockets = [await open(a, 'bea'), await open(b, 'bea'), await open(b, 'bob')];
      // Node loads are written every second: wait until C's count is exact.
      const last = await waitFor(
        async () => {
          const answer = await cluster.api(c, 'POST', '/v1/broadcast', { event: 'notice' });
          expect(answer.status).toBe(202);
          const body = (await answer.json()) as { id: string; connections: number };
          return body.connections === 3 ? body : undefined;
        },
        { timeoutMs: 10_000, intervalMs: 200, what: 'a broadcast counted on every node' },
      );
      for (const socket of sockets) {
        await socket.waitForFrame(
          (frame): frame is BroadcastFrame => frame.type === 'broadcast' && frame.id === last.id,
        );
      }
    });

    it('a pub/sub cut (CLIENT KILL TYPE pubsub) mid-stream is filled from history: every event once, in order', async () => {
      const socket = await open(a, 'cutter');
      const publisher = new TickPublisher(cluster, 'cutter', () => b);
      for (let i = 0; i < 20; i++) await publisher.publishNext();
      await socket.waitForEvents(20, 10_000);
      const admin = new Redis(cluster.redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
      let missedLive = false;
      try {
        await admin.connect();
        const killed = await admin.client('KILL', 'TYPE', 'pubsub');
        // One subscriber link per node.
        expect(killed).toBeGreaterThanOrEqual(3);
        // Published at once through B, whose command link was not cut. An
        // event accepted while the user's channel has no subscriber never
        // reaches node A live: only history can bring it.
        for (let i = 0; i < 40; i++) {
          expect(await publisher.publishNext()).toBe(true);
          const [, subscribers] = (await admin.pubsub(
            'NUMSUB',
            'agentsocket:{u:cutter}:events',
          )) as [string, number];
          if (subscribers === 0) missedLive = true;
        }
      } finally {
        admin.disconnect();
      }
      expect(missedLive).toBe(true);
      await socket.waitForEvents(60, 15_000);
      expect(socket.seqs()).toEqual(range(1, 60));
      expect(idsOf(socket.events())).toEqual(expectedIds(publisher));
      expect(socket.closedWith).toBeNull();
      await waitFor(() => logSays(a, 'redis broker: subscriptions restored'), {
        what: 'node A to restore its subscriptions',
      });
    });
  });

  describe('faults that need their own cluster', () => {
    let cluster: Cluster | undefined;
    const clients: AgentSocketClient[] = [];
    const sockets: TestClient[] = [];

    afterEach(async () => {
      for (const client of clients.splice(0)) client.close();
      for (const socket of sockets.splice(0)) socket.terminate();
      await cluster?.stop();
      cluster = undefined;
    });

    const sdkClient = (
      running: Cluster,
      userId: string,
      url: string | (() => string),
    ): AgentSocketClient => {
      const client = new AgentSocketClient({
        url,
        token: () => running.token(userId),
        WebSocket,
        backoff: () => 50,
        connectTimeoutMs: 5_000,
      });
      clients.push(client);
      return client;
    };

    it('node A SIGKILLed while events flow through B: the SDK resumes on B, every event once, in order', async () => {
      const running = await startCluster({ nodes: 2 });
      cluster = running;
      const [a, b] = running.nodes as [CliServer, CliServer];
      // The SDK's url function walks the node list: A first, then B, …
      const asked: string[] = [];
      const client = sdkClient(running, 'kim', () => {
        const node = running.nodes[asked.length % running.nodes.length] as CliServer;
        asked.push(node.wsUrl);
        return node.wsUrl;
      });
      const seen = record(client);
      await client.connect();
      expect(asked).toEqual([a.wsUrl]);

      const publisher = new TickPublisher(running, 'kim', () => b);
      const total = 120;
      const flowing = (async () => {
        while (publisher.issued < total) expect(await publisher.publishNext()).toBe(true);
      })();
      await waitFor(() => seen.events.length >= 30, { timeoutMs: 10_000, what: '30 events on A' });
      const pid = a.child.pid as number;
      process.kill(pid, 'SIGKILL');
      expect(await a.exited).toBe('SIGKILL');
      await flowing;
      await waitFor(() => seen.events.length >= total, {
        timeoutMs: 20_000,
        what: `all ${total} events after the move to B`,
      });
      expect(seen.events.map((e) => e.seq)).toEqual(range(1, total));
      expect(seen.events.map((e) => e.data)).toEqual(range(0, total - 1));
      expect(asked.at(-1)).toBe(b.wsUrl);
      // The welcome on B resumed the cursor: same epoch, no gap.
      const [first, onB] = [seen.welcomes[0], seen.welcomes.at(-1)];
      expect(seen.welcomes.length).toBeGreaterThanOrEqual(2);
      expect(onB?.epoch).toBe(first?.epoch);
      expect(onB?.replay.gap).toBe(false);
      expect(onB?.replay.from).toBeGreaterThan(1);
      expect(seen.gaps).toEqual([]);
    });

    it('Redis SIGKILLed mid-stream and restarted from AOF (fsync always): 503s are retried, nothing accepted is lost or repeated, nodes recover', async () => {
      const running = await startCluster({
        nodes: 2,
        redis: { appendOnly: true, appendFsync: 'always' },
      });
      cluster = running;
      const [a, b] = running.nodes as [CliServer, CliServer];
      const onA = await TestClient.connect(a.wsUrl, {
        token: await running.token('ray'),
        autoAck: true,
      });
      sockets.push(onA);
      const app = sdkClient(running, 'ray', b.wsUrl);
      const seen = record(app);
      await app.connect();

      const publisher = new TickPublisher(running, 'ray', () => b);
      for (let i = 0; i < 25; i++) expect(await publisher.publishNext()).toBe(true);
      await running.redis.kill();
      // Publish on through the outage until both nodes say they are not ready
      // and at least five publishes were refused.
      await waitFor(
        async () => {
          await publisher.publishNext();
          if (publisher.refused < 5) return false;
          const ready = await Promise.all(
            [a, b].map(async (node) => (await fetch(`${node.url}/readyz`)).status),
          );
          return ready.every((status) => status === 503);
        },
        { timeoutMs: 15_000, intervalMs: 50, what: 'refused publishes and failing /readyz' },
      );
      const refusedInOutage = publisher.refused;
      await running.redis.restart();
      await running.waitReady(a);
      await running.waitReady(b);
      // Ready nodes may still answer a publish 503 (the first fsync'd writes
      // of a loaded machine can outlast the command timeout): a publisher
      // retries it with the same id, which is what this case checks.
      for (let i = 0; i < 25; i++) await publisher.publishNext();
      await waitFor(async () => (await publisher.retryRefused()) === 0, {
        timeoutMs: 15_000,
        what: 'every refused publish accepted on a retry',
      });

      const total = publisher.issued;
      expect(refusedInOutage).toBeGreaterThanOrEqual(5);
      expect(publisher.accepted.size).toBe(total);
      const stream = expectedIds(publisher);
      // Seqs 1..total: each event stored once, even those whose 503 hid a write.
      expect([...publisher.accepted.values()].sort((x, y) => x - y)).toEqual(range(1, total));
      await onA.waitForEvents(total, 15_000);
      await waitFor(() => seen.events.length >= total, { timeoutMs: 15_000, what: 'the app' });
      expect(onA.seqs()).toEqual(range(1, total));
      expect(idsOf(onA.events())).toEqual(stream);
      expect(onA.closedWith).toBeNull();
      expect(seen.events.map((e) => e.seq)).toEqual(range(1, total));
      expect(idsOf(seen.events)).toEqual(stream);
      expect(seen.gaps).toEqual([]);
    });

    it('Redis restarted without persistence: open connections close with 1012 and the next welcome says gap (new epoch)', async () => {
      const running = await startCluster({ nodes: 2 });
      cluster = running;
      const [a, b] = running.nodes as [CliServer, CliServer];
      const onA = await TestClient.connect(a.wsUrl, {
        token: await running.token('gil'),
        autoAck: true,
      });
      sockets.push(onA);
      const app = sdkClient(running, 'gil', b.wsUrl);
      const seen = record(app);
      await app.connect();
      const publisher = new TickPublisher(running, 'gil', () => b);
      for (let i = 0; i < 5; i++) expect(await publisher.publishNext()).toBe(true);
      await onA.waitForEvents(5, 10_000);
      await waitFor(() => seen.events.length === 5, { what: 'five events at the app' });
      const oldEpoch = seen.welcomes[0]?.epoch as string;

      await running.redis.kill();
      await running.redis.restart();
      await running.waitReady(a);
      await running.waitReady(b);
      // The nodes find the stream gone when they catch up after reconnecting:
      // a connection cannot be told in band, so it is closed with 1012 ...
      expect((await onA.waitForClose(15_000)).code).toBe(1012);
      // ... and the SDK reconnects with its old cursor and is told the gap.
      await waitFor(() => seen.gaps.length === 1, { timeoutMs: 15_000, what: 'a gap at the app' });
      expect(seen.gaps[0]).toMatchObject({ lastSeq: 5, newEpoch: true });
      const reopened = seen.welcomes.at(-1);
      expect(reopened?.replay.gap).toBe(true);
      expect(reopened?.epoch).not.toBe(oldEpoch);

      // A raw resume with the old cursor is told the same.
      const resumed = await TestClient.connect(a.wsUrl, {
        token: await running.token('gil'),
        query: { lastSeq: 5, epoch: oldEpoch },
      });
      sockets.push(resumed);
      expect((await resumed.welcome()).replay.gap).toBe(true);

      // The new stream starts at 1 and flows to everyone.
      for (let i = 0; i < 3; i++) expect(await publisher.publishNext()).toBe(true);
      await resumed.waitForEvents(3, 10_000);
      expect(resumed.seqs()).toEqual([1, 2, 3]);
      await waitFor(() => seen.events.length === 8, { what: 'three new events at the app' });
      expect(seen.events.slice(5).map((e) => e.seq)).toEqual([1, 2, 3]);
      expect(seen.events.map((e) => e.data)).toEqual(range(0, 7));
    });
  });
});
