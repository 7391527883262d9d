/**
 * Isolation (docs/delivery.md, invariant 1): an event for user A never reaches
 * user B, whatever clients send and however much runs at once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { EventFrame } from '../../src/protocol/frames.js';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';
import type { TestClient } from '../helpers/test-client.js';

let h: Harness;
afterEach(async () => h?.close());

function expectOwnOrderedGapless(client: TestClient, userId: string, count: number): void {
  const events = client.events();
  expect(events.map((e) => (e.data as { user: string }).user)).toEqual(Array(count).fill(userId));
  expect(events.map((e) => e.seq)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
}

describe('isolation under concurrent load', () => {
  it('30 users × 3 connections × 40 concurrent publishes: every frame belongs to its user, in order, no gap', async () => {
    // All clients share 127.0.0.1: lift the per-IP handshake rate for this test.
    h = await startGateway({ limits: { handshakesPerIpPerSecond: 10_000 } });
    const users = Array.from({ length: 30 }, (_, i) => `user-${i}`);
    const clients = new Map<string, TestClient[]>();
    await Promise.all(
      users.map(async (userId) => {
        clients.set(userId, await Promise.all([1, 2, 3].map(() => h.connect(userId))));
      }),
    );
    const perUser = 40;
    await Promise.all(
      users.flatMap((userId) =>
        Array.from({ length: perUser }, (_, n) =>
          h.gateway.publish(userId, { event: 'token', data: { user: userId, n } }),
        ),
      ),
    );
    for (const [userId, list] of clients) {
      for (const client of list) {
        await client.waitForEvents(perUser);
        expectOwnOrderedGapless(client, userId, perUser);
      }
    }
  });

  it('nothing a client sends changes whose events it gets', async () => {
    h = await startGateway();
    const mallory = await h.connect('mallory');
    const alice = await h.connect('alice');
    const hostile = [
      { type: 'subscribe', userId: 'alice' },
      { type: 'ack', seq: 999, userId: 'alice' },
      { type: 'refresh', token: await h.token('alice') },
      { type: 'event', seq: 1, userId: 'alice', data: {} },
      '{"type":"ack","seq":1,"__proto__":{"userId":"alice"}}',
    ];
    // The refresh with alice's token closes mallory (4403); send the rest first.
    for (const frame of hostile.filter((f) => typeof f === 'string' || f.type !== 'refresh')) {
      mallory.send(frame);
    }
    await h.gateway.publish('alice', { event: 'secret', data: { user: 'alice' } });
    await h.gateway.publish('mallory', { event: 'mine', data: { user: 'mallory' } });
    await alice.waitForEvents(1);
    await mallory.waitForEvents(1);
    expect(mallory.events().map((e: EventFrame) => e.event)).toEqual(['mine']);
    mallory.send(hostile[2]);
    expect((await mallory.waitForClose()).code).toBe(4403);
    expect(alice.events().map((e) => e.event)).toEqual(['secret']);
    expect(alice.closedWith).toBeNull();
  });

  it('a resume cursor taken from another user replays only the resumer’s own stream', async () => {
    h = await startGateway();
    for (let i = 0; i < 5; i++)
      await h.gateway.publish('alice', { event: 'a', data: { user: 'alice' } });
    await h.gateway.publish('bob', { event: 'b', data: { user: 'bob' } });
    const alice = await h.connect('alice');
    const aliceEpoch = (await alice.welcome()).epoch;
    const bob = await h.connect('bob', { query: { lastSeq: 0, epoch: aliceEpoch } });
    const welcome = await bob.welcome();
    expect(welcome.userId).toBe('bob');
    await bob.waitForEvents(1);
    expect(bob.events().map((e) => (e.data as { user: string }).user)).toEqual(['bob']);
  });
});
