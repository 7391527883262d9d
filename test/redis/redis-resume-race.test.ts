/**
 * A subscribe on the Redis engine reads nothing: the stream follower takes
 * its position from the first live message (`stream-follower.ts`), and the
 * connection's own history read does the rest. These tests race that seam
 * against publishes from another node:
 * - the engine: every event published after `subscribe` resolved reaches
 *   `onEvent`, in order, once, with no resync;
 * - a resume on a gateway: the client gets every event after its cursor,
 *   replayed or live, in order, once, while publishes go on;
 * - a link cut before the first message: the follower starts from the head
 *   with `onResync` (nothing to count from), then goes on live.
 */
import { describe, expect, it } from 'vitest';
import type { EncodedEvent } from '../../src/protocol/event-frame.js';
import { encodeEvent } from '../../src/protocol/event-frame.js';
import { validateEventInput } from '../../src/protocol/event-input.js';
import { RedisBroker } from '../../src/broker/redis/redis-broker.js';
import { startGateway } from '../helpers/gateway-harness.js';
import { redisServerMissing } from '../helpers/redis-server.js';
import { useRedisSuite } from '../helpers/redis-suite.js';
import type { TestClient } from '../helpers/test-client.js';
import { waitFor } from '../helpers/wait-for.js';

function note(i: number): EncodedEvent {
  const result = validateEventInput({ event: 'note', data: { i } }, 1024);
  if (!result.ok) throw new Error(result.failure.message);
  return encodeEvent(result.value);
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** True when `seqs` go up by one each, with no repeat. */
function contiguous(seqs: readonly number[]): boolean {
  return seqs.every((seq, i) => i === 0 || seq === seqs[i - 1]! + 1);
}

describe.skipIf(redisServerMissing)('RedisBroker: a subscribe racing publishes', () => {
  const redis = useRedisSuite();

  it('hands onEvent every event published after subscribe resolved, in order, once', async () => {
    const a = await redis.node({ keyPrefix: 'race' });
    const b = await redis.node({ keyPrefix: 'race' });
    const users = range(1, 20).map((k) => `racer${k}`);
    for (const user of users) {
      for (const i of range(1, 3)) await b.broker.publish(user, note(i));
    }
    let publishing = true;
    const startedAfter = new Map<string, number>();
    const publishers = users.map(async (user) => {
      for (let i = 4; publishing && i < 10_000; i++) {
        const subscribed = startedAfter.has(user);
        const { seq } = await b.broker.publish(user, note(i));
        // The first seq whose publish began after the subscribe resolved.
        if (subscribed && startedAfter.get(user) === -1) startedAfter.set(user, seq);
      }
    });
    // Each user's subscribe lands while its publisher is mid-stream.
    for (const user of users) {
      await a.broker.subscribe(user);
      startedAfter.set(user, -1);
    }
    await waitFor(() => users.every((user) => (startedAfter.get(user) ?? -1) > 0), {
      what: 'a publish after every subscribe',
    });
    publishing = false;
    await Promise.all(publishers);
    const heads = await Promise.all(
      users.map(async (user) => (await b.broker.readHistory(user, { kind: 'acked' })).headSeq),
    );
    await waitFor(() => users.every((user, k) => a.handlers.seqsOf(user).at(-1) === heads[k]), {
      what: 'every head live on a',
    });
    users.forEach((user) => {
      const seqs = a.handlers.seqsOf(user);
      expect(contiguous(seqs), `${user}: ${seqs.join(',')}`).toBe(true);
      expect(seqs[0], user).toBeLessThanOrEqual(startedAfter.get(user)!);
    });
    expect(a.handlers.resyncs).toEqual([]);
  });

  it('resumes a client on a gateway with every event after its cursor once, while publishes go on', async () => {
    const broker = new RedisBroker({ url: redis.server.url, keyPrefix: 'rgw' });
    const publisher = await redis.node({ keyPrefix: 'rgw' });
    const h = await startGateway({ broker });
    let publishing = true;
    const publishers: Promise<void>[] = [];
    try {
      await waitFor(() => h.gateway.readiness().ready, { what: 'a ready gateway' });
      const users = range(1, 10).map((k) => `resumer${k}`);
      const epochs = new Map<string, string>();
      for (const user of users) {
        for (const i of range(1, 10)) {
          epochs.set(user, (await publisher.broker.publish(user, note(i))).epoch);
        }
      }
      const last = new Map<string, number>();
      for (const user of users) {
        publishers.push(
          (async () => {
            // At most 400 events: the cursor (5) stays inside the history (1000).
            for (let i = 11; publishing && i <= 400; i++) {
              last.set(user, (await publisher.broker.publish(user, note(i))).seq);
            }
          })(),
        );
      }
      const clients: TestClient[] = [];
      for (const user of users) {
        clients.push(await h.connect(user, { query: { lastSeq: 5, epoch: epochs.get(user)! } }));
      }
      for (const client of clients) expect((await client.welcome()).replay.gap).toBe(false);
      await waitFor(() => clients.every((client) => client.seqs().length > 10), {
        what: 'every client past its first events',
      });
      publishing = false;
      await Promise.all(publishers);
      for (const [k, client] of clients.entries()) {
        const head = last.get(users[k]!)!;
        await waitFor(() => client.seqs().at(-1) === head, { what: `${users[k]} at ${head}` });
        expect(client.seqs()).toEqual(range(6, head));
      }
    } finally {
      publishing = false;
      await Promise.allSettled(publishers);
      await h.close();
      await broker.close();
    }
  });

  it('after a link cut before the first message: onResync, then live from the head', async () => {
    const a = await redis.node({ keyPrefix: 'cut' });
    const b = await redis.node({ keyPrefix: 'cut' });
    const user = 'quiet';
    await b.broker.publish(user, note(1));
    await a.broker.subscribe(user);
    const killed = await redis.admin.client('KILL', 'TYPE', 'pubsub');
    expect(killed).toBeGreaterThanOrEqual(1);
    await waitFor(() => a.handlers.resyncs.includes(user), { what: 'onResync on a' });
    // Positioned at the head: the next event arrives live, alone.
    await waitFor(() => a.broker.health().healthy, { what: 'a healthy again' });
    const { seq } = await b.broker.publish(user, note(2));
    await waitFor(() => a.handlers.seqsOf(user).includes(seq), { what: 'the next event on a' });
    expect(a.handlers.seqsOf(user)).toEqual([seq]);
    expect(a.handlers.resyncs).toEqual([user]);
  });
});
