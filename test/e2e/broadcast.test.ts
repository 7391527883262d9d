/**
 * PROTOCOL.md section 3, "Broadcast": a broadcast frame goes to every open
 * connection of every user at the moment of publishing; it has no seq, is
 * not replayed, and `broadcast()` answers with the number of connections.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { BroadcastFrame, ServerFrame } from '../../src/protocol/frames.js';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';
import type { TestClient } from '../helpers/test-client.js';
import { waitFor } from '../helpers/wait-for.js';

let h: Harness;
afterEach(async () => h?.close());

function broadcasts(client: TestClient): BroadcastFrame[] {
  return client.frames.filter((f): f is BroadcastFrame => f.type === 'broadcast');
}

describe('broadcast', () => {
  it('reaches every open connection of every user and counts them', async () => {
    h = await startGateway();
    const clients = [
      await h.connect('alice'),
      await h.connect('alice'),
      await h.connect('bob'),
      await h.connect('carol'),
    ];
    const before = Date.now();
    const result = await h.gateway.broadcast('maintenance', { at: '02:00', minutes: 5 });
    expect(result.connections).toBe(clients.length);
    expect(result.id).toMatch(/^bc_/);

    for (const client of clients) {
      await waitFor(() => broadcasts(client).length === 1, { what: 'the broadcast' });
      const [frame] = broadcasts(client);
      expect(frame).toEqual({
        type: 'broadcast',
        id: result.id,
        event: 'maintenance',
        ts: expect.any(Number),
        data: { at: '02:00', minutes: 5 },
      });
      expect(frame?.ts).toBeGreaterThanOrEqual(before);
      expect(Object.keys(frame ?? {})).not.toContain('seq');
    }
    // No user's stream moved.
    const next = await h.gateway.publish('alice', { event: 'note', data: 1 });
    expect(next.seq).toBe(1);
    expect(h.gateway.stats().events.broadcasts).toBe(1);
  });

  it('answers 0 with no connection, and data defaults to null', async () => {
    h = await startGateway();
    expect((await h.gateway.broadcast('maintenance')).connections).toBe(0);
    const alice = await h.connect('alice');
    expect((await h.gateway.broadcast('maintenance')).connections).toBe(1);
    await waitFor(() => broadcasts(alice).length === 1, { what: 'the broadcast' });
    expect(broadcasts(alice)[0]?.data).toBeNull();
  });

  it('is not replayed on resume nor to a connection opened afterwards', async () => {
    h = await startGateway();
    const alice = await h.connect('alice', { autoAck: true });
    const { epoch } = await alice.welcome();
    await h.gateway.publish('alice', { event: 'note', data: 'before' });
    await h.gateway.broadcast('maintenance', { n: 1 });
    await h.gateway.publish('alice', { event: 'note', data: 'after' });
    await alice.waitForEvents(2);
    // Live, it sits between the two events, where it was published.
    expect(alice.frames.map((f) => f.type)).toEqual(['welcome', 'event', 'broadcast', 'event']);

    const resumed = await h.connect('alice', { query: { lastSeq: 0, epoch } });
    expect((await resumed.welcome()).replay.count).toBe(2);
    await resumed.waitForEvents(2);
    const fresh = await h.connect('bob');
    // A frame sent after the replay marks the end of what each connection was sent.
    const marker = await h.gateway.broadcast('marker');
    expect(marker.connections).toBe(3);
    for (const client of [resumed, fresh]) {
      await waitFor(() => broadcasts(client).length === 1, { what: 'the marker' });
      expect(broadcasts(client).map((b) => b.event)).toEqual(['marker']);
    }
    expect(resumed.frames.map((f: ServerFrame) => f.type)).toEqual([
      'welcome',
      'event',
      'event',
      'broadcast',
    ]);
  });

  it('skips connections that are closing or closed', async () => {
    h = await startGateway();
    const alice = await h.connect('alice');
    const bob = await h.connect('bob');
    const carol = await h.connect('carol');
    carol.close();
    await waitFor(() => h.gateway.connectionCount === 2, { what: 'carol gone' });
    // Bob is closing (registered until his socket answers the close) at the broadcast.
    expect(h.gateway.disconnectUser('bob')).toBe(1);
    expect(h.gateway.connections('bob')[0]?.state).toBe('closing');
    expect((await h.gateway.broadcast('maintenance')).connections).toBe(1);
    await waitFor(() => broadcasts(alice).length === 1, { what: 'the broadcast' });
    expect(await bob.waitForClose()).toMatchObject({ code: 4401 });
    expect(broadcasts(bob)).toEqual([]);
    expect(broadcasts(carol)).toEqual([]);
  });

  it('refuses a malformed event name', async () => {
    h = await startGateway();
    await h.connect('alice');
    for (const name of ['', 'Maintenance', '1x', 'a b', 'x'.repeat(65)]) {
      await expect(h.gateway.broadcast(name)).rejects.toMatchObject({ code: 'bad_request' });
    }
    expect(h.gateway.stats().events.broadcasts).toBe(0);
  });
});
