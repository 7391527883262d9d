/**
 * The connection registry seen from outside (PROTOCOL.md section 5,
 * `GET/DELETE /v1/users/{userId}/connections`, through the in-process API):
 * snapshots, entries that come and go with connections, operator
 * disconnects, shutdown, and no leak after a storm of concurrent handshakes
 * and closes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBroker } from '../../src/broker/memory-broker.js';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';
import { TestClient } from '../helpers/test-client.js';
import { waitFor } from '../helpers/wait-for.js';

let h: Harness;
const extraClients: TestClient[] = [];
afterEach(async () => {
  for (const client of extraClients.splice(0)) client.terminate();
  await h?.close();
});

function memoryBroker(): MemoryBroker {
  const broker = h.gateway.broker;
  if (!(broker instanceof MemoryBroker)) throw new Error('expected the default memory broker');
  return broker;
}

describe('connection registry', () => {
  it('snapshots a connection: state, times, address, user agent, seqs, node', async () => {
    h = await startGateway();
    const before = Date.now();
    const alice = await h.connect('alice', { headers: { 'user-agent': 'e2e-agent/1.0' } });
    const after = Date.now();
    const welcome = await alice.welcome();
    const [snapshot] = h.gateway.connections('alice');
    expect(snapshot).toMatchObject({
      connectionId: welcome.connectionId,
      userId: 'alice',
      state: 'open',
      remoteAddress: '127.0.0.1',
      userAgent: 'e2e-agent/1.0',
      ackedSeq: 0,
      sentSeq: 0,
      bufferedBytes: 0,
      node: h.gateway.nodeId,
    });
    expect(snapshot?.connectedAt).toBeGreaterThanOrEqual(before);
    expect(snapshot?.connectedAt).toBeLessThanOrEqual(after);

    for (let n = 1; n <= 3; n++) await h.gateway.publish('alice', { event: 'note', data: n });
    await alice.waitForEvents(3);
    expect(h.gateway.connections('alice')[0]?.sentSeq).toBe(3);
    alice.ack(2);
    await waitFor(() => h.gateway.connections('alice')[0]?.ackedSeq === 2, { what: 'acked 2' });
    alice.ack(3);
    await waitFor(() => h.gateway.connections('alice')[0]?.ackedSeq === 3, { what: 'acked 3' });
    // Cumulative: an older ack does not move it back.
    alice.ack(1);
    alice.send({ type: 'ping' });
    await waitFor(() => alice.frames.some((f) => f.type === 'pong'), { what: 'the pong' });
    expect(h.gateway.connections('alice')[0]?.ackedSeq).toBe(3);
    expect(h.gateway.connections('alice')[0]?.lastSeenAt).toBeGreaterThanOrEqual(after);
  });

  it('records no user agent when none is sent, and caps a long one', async () => {
    h = await startGateway();
    await h.connect('alice');
    expect(h.gateway.connections('alice')[0]?.userAgent).toBeNull();
    await h.connect('bob', { headers: { 'user-agent': 'x'.repeat(1000) } });
    expect(h.gateway.connections('bob')[0]?.userAgent).toBe('x'.repeat(256));
  });

  it("creates a user's entry with the first connection and keeps the others when one goes", async () => {
    h = await startGateway();
    expect(h.gateway.connections('alice')).toEqual([]);
    expect(h.gateway.stats()).toMatchObject({ connections: 0, users: 0 });
    const first = await h.connect('alice');
    expect(h.gateway.connections('alice')).toHaveLength(1);
    expect(h.gateway.stats()).toMatchObject({ connections: 1, users: 1 });
    const second = await h.connect('alice');
    const third = await h.connect('alice');
    await h.connect('bob');
    expect(h.gateway.stats()).toMatchObject({ connections: 4, users: 2 });

    const secondId = (await second.welcome()).connectionId;
    second.close();
    await waitFor(() => h.gateway.connections('alice').length === 2, { what: 'one removed' });
    const left = h.gateway.connections('alice').map((c) => c.connectionId);
    expect(left).not.toContain(secondId);
    expect(left).toEqual([
      (await first.welcome()).connectionId,
      (await third.welcome()).connectionId,
    ]);
    expect(h.gateway.stats()).toMatchObject({ connections: 3, users: 2 });

    await h.gateway.publish('alice', { event: 'note', data: 1 });
    for (const client of [first, third]) expect((await client.waitForEvents(1))[0]?.seq).toBe(1);
    expect(second.events()).toEqual([]);

    first.close();
    third.close();
    await waitFor(() => h.gateway.stats().users === 1, { what: 'alice gone' });
    expect(h.gateway.connections('alice')).toEqual([]);
    await waitFor(() => memoryBroker().stats().subscribedUsers === 1, {
      what: 'alice unsubscribed',
    });
  });

  it('disconnectUser closes each connection of the user with 4401 and returns the count', async () => {
    h = await startGateway();
    const alices = [await h.connect('alice'), await h.connect('alice'), await h.connect('alice')];
    const bob = await h.connect('bob');
    expect(h.gateway.disconnectUser('alice')).toBe(3);
    // Already closing: not counted twice.
    expect(h.gateway.disconnectUser('alice')).toBe(0);
    for (const client of alices) expect(await client.waitForClose()).toMatchObject({ code: 4401 });
    await waitFor(() => h.gateway.connections('alice').length === 0, { what: 'alice removed' });
    expect(h.gateway.disconnectUser('alice')).toBe(0);
    expect(h.gateway.disconnectUser('nobody')).toBe(0);

    expect(bob.closedWith).toBeNull();
    expect(h.gateway.stats()).toMatchObject({ connections: 1, users: 1 });
    await h.gateway.publish('bob', { event: 'note', data: 1 });
    expect((await bob.waitForEvents(1))[0]?.seq).toBe(1);
    // Alice may come back (a new token after a logout).
    const back = await h.connect('alice');
    expect((await back.welcome()).userId).toBe('alice');
  });

  it('is empty and unsubscribed after 20 users x 5 connections open and close at once', async () => {
    const users = 20;
    const perUser = 5;
    h = await startGateway({
      limits: { maxConnectionsPerUser: perUser, handshakesPerIpPerSecond: 10_000 },
    });
    const tokens = await Promise.all(Array.from({ length: users }, (_, u) => h.token(`user${u}`)));

    const storm = async (): Promise<void> => {
      const clients: TestClient[] = [];
      for (let i = 0; i < users * perUser; i++) {
        const client = TestClient.open(h.wsUrl, { token: tokens[i % users] });
        extraClients.push(client);
        clients.push(client);
        // Every way to go away, at every step of the handshake.
        switch (i % 5) {
          case 0:
            client.terminate();
            break;
          case 1:
            client.ws.once('upgrade', () => client.terminate());
            break;
          case 2:
            client.ws.once('open', () => client.close());
            break;
          case 3:
            void client.welcome().then(
              () => client.close(),
              () => undefined,
            );
            break;
          default:
            // Closed by the server.
            void client.welcome().then(
              () => h.gateway.disconnectUser(`user${i % users}`),
              () => undefined,
            );
        }
      }
      await Promise.all(clients.map((client) => client.closed));
      await waitFor(
        () =>
          h.gateway.connectionCount === 0 &&
          h.gateway.stats().users === 0 &&
          memoryBroker().stats().subscribedUsers === 0,
        {
          timeoutMs: 10_000,
          what: 'registry empty and broker unsubscribed',
        },
      );
    };

    await storm();
    await storm();
    expect(h.gateway.connections('user0')).toEqual([]);
    // The storm did reach the gateway: at least the three kinds that wait for the upgrade.
    const accepted = /agentsocket_handshakes_total\{outcome="accepted"\} (\d+)/.exec(
      await h.gateway.metrics.registry.metrics(),
    );
    expect(Number(accepted?.[1])).toBeGreaterThanOrEqual((2 * (users * perUser * 3)) / 5);
    // No slot leaked: every user can open its full allowance again.
    const again = await Promise.all(
      Array.from({ length: users * perUser }, (_, i) =>
        TestClient.connect(h.wsUrl, { token: tokens[i % users] }),
      ),
    );
    extraClients.push(...again);
    expect(h.gateway.stats()).toMatchObject({ connections: users * perUser, users });
    expect(memoryBroker().stats().subscribedUsers).toBe(users);
  });

  it('close() closes every open connection with 1001 and empties the registry', async () => {
    h = await startGateway();
    const clients = [await h.connect('alice'), await h.connect('alice'), await h.connect('bob')];
    await h.gateway.close();
    for (const client of clients) expect(await client.waitForClose()).toMatchObject({ code: 1001 });
    expect(h.gateway.connectionCount).toBe(0);
    expect(h.gateway.stats().users).toBe(0);
    expect(await h.gateway.metrics.registry.metrics()).toMatch(
      /agentsocket_closes_total\{code="1001"\} 3\b/,
    );
  });
});
