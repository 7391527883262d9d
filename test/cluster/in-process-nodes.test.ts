/**
 * Several gateway nodes in one process over an `InProcessCluster`: the
 * cluster behaviour of the gateway without Redis (as socket.io-adapter tests
 * its adapters), with real WebSocket clients on 127.0.0.1. The same
 * behaviour on Redis, across processes, is test/cluster/multi-node.test.ts.
 *
 * - a publish on any node reaches the user's connections on every node, in
 *   order, once; `delivered` counts them all;
 * - publish-and-wait on a node without the user's connections resolves by the
 *   other nodes' delivery reports (written; acked for critical events);
 * - operators list and close a user's connections on every node from any node;
 * - a broadcast reaches every node's connections and counts them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { InProcessCluster } from '../../src/broker/in-process-cluster.js';
import { MemoryBroker } from '../../src/broker/memory-broker.js';
import type { BroadcastFrame } from '../../src/protocol/frames.js';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';
import type { TestClient } from '../helpers/test-client.js';
import { waitFor } from '../helpers/wait-for.js';

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

interface Node {
  harness: Harness;
  broker: MemoryBroker;
}

const nodes: Node[] = [];

afterEach(async () => {
  for (const node of nodes.splice(0)) {
    await node.harness.close();
    await node.broker.close();
  }
});

/** `count` gateway nodes, `a`, `b`, `c`…, on one in-process cluster. */
async function startNodes(count: number): Promise<Node[]> {
  const cluster = new InProcessCluster();
  for (let i = 0; i < count; i++) {
    const broker = new MemoryBroker({ cluster, nodeId: String.fromCharCode(97 + i) });
    nodes.push({ harness: await startGateway({ broker }), broker });
  }
  return nodes;
}

function broadcasts(client: TestClient): BroadcastFrame[] {
  return client.frames.filter((f): f is BroadcastFrame => f.type === 'broadcast');
}

describe('gateway nodes on an in-process cluster', () => {
  it('fans a publish on any node out to the user on every node, in order, and counts them', async () => {
    const [a, b, c] = (await startNodes(3)) as [Node, Node, Node];
    const onA = await a.harness.connect('alice');
    const onB = await b.harness.connect('alice');
    const bob = await b.harness.connect('bob');
    const results = [];
    for (let i = 1; i <= 20; i++) {
      results.push(await c.harness.gateway.publish('alice', { event: 'token', data: { i } }));
    }
    expect(results.map((r) => r.seq)).toEqual(range(1, 20));
    // Connections of the user on every node, counted by the engine in the publish step.
    expect(results.map((r) => r.delivered)).toEqual(results.map(() => 2));
    await onA.waitForEvents(20);
    await onB.waitForEvents(20);
    expect(onA.seqs()).toEqual(range(1, 20));
    expect(onB.seqs()).toEqual(range(1, 20));
    expect(onB.events().map((e) => e.data)).toEqual(range(1, 20).map((i) => ({ i })));
    expect(bob.events()).toEqual([]);
    // Each node wrote the events to its own connection only.
    expect(a.harness.gateway.stats().events.delivered).toBe(20);
    expect(b.harness.gateway.stats().events.delivered).toBe(20);
    expect(c.harness.gateway.stats().events.delivered).toBe(0);
  });

  it('counts delivered 0 once the user is gone from every node', async () => {
    const [a, b] = (await startNodes(2)) as [Node, Node];
    const client = await a.harness.connect('dora');
    expect((await b.harness.gateway.publish('dora', { event: 'note' })).delivered).toBe(1);
    client.close();
    await client.waitForClose();
    await waitFor(() => a.harness.gateway.connectionCount === 0, { what: 'the close on a' });
    expect((await b.harness.gateway.publish('dora', { event: 'note' })).delivered).toBe(0);
  });

  it("resolves a publish-and-wait by another node's reports: written, or acked when critical", async () => {
    const [a, b] = (await startNodes(2)) as [Node, Node];
    const client = await a.harness.connect('erin');
    const plain = await b.harness.gateway.publish(
      'erin',
      { event: 'note', data: 'plain' },
      { waitMs: 5_000 },
    );
    expect(plain).toMatchObject({ seq: 1, delivered: 1, duplicate: false });
    const critical = b.harness.gateway.publish(
      'erin',
      { event: 'note', critical: true, data: 'critical' },
      { waitMs: 5_000 },
    );
    const [, written] = await client.waitForEvents(2);
    expect(written).toMatchObject({ seq: 2, critical: true });
    client.ack(2);
    expect(await critical).toMatchObject({ seq: 2, delivered: 1 });
  });

  it('lists and closes a user’s connections on every node from any node', async () => {
    const [a, b, c] = (await startNodes(3)) as [Node, Node, Node];
    const onA = await a.harness.connect('fay');
    const onB = await b.harness.connect('fay');
    const listed = await c.harness.gateway.connectionsEverywhere('fay');
    expect(listed.map((s) => s.node).sort()).toEqual(['a', 'b']);
    expect(listed.every((s) => s.userId === 'fay' && s.state === 'open')).toBe(true);
    expect(await a.harness.gateway.connectionsEverywhere('fay')).toHaveLength(2);

    expect(await c.harness.gateway.disconnectUserEverywhere('fay')).toBe(2);
    expect((await onA.waitForClose()).code).toBe(4401);
    expect((await onB.waitForClose()).code).toBe(4401);
    await waitFor(async () => (await c.harness.gateway.connectionsEverywhere('fay')).length === 0, {
      what: 'the directory to empty',
    });
  });

  it("broadcasts to every node's connections and counts them", async () => {
    const [a, b, c] = (await startNodes(3)) as [Node, Node, Node];
    const clients = [
      await a.harness.connect('gus'),
      await a.harness.connect('hal'),
      await b.harness.connect('ivy'),
    ];
    // Each node writes its connection count every second: wait for a and b's.
    await waitFor(
      async () => {
        const loads = await c.broker.nodeLoads();
        return loads.get('a') === 2 && loads.get('b') === 1;
      },
      { what: "a's and b's loads" },
    );
    const result = await c.harness.gateway.broadcast('maintenance', { at: '02:00' });
    expect(result.connections).toBe(3);
    for (const client of clients) {
      await waitFor(() => broadcasts(client).length === 1, { what: 'the broadcast' });
      expect(broadcasts(client)[0]).toMatchObject({ id: result.id, event: 'maintenance' });
    }
  });
});
