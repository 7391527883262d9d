/**
 * RedisBroker when Redis misbehaves: a stop and restart with AOF, a cut of the
 * subscriber links, a restart that lost everything. Two brokers are two nodes:
 * `a` holds the user's connection (subscribed), `b` publishes.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerUnavailableError, type PublishOutcome } from '../../src/broker/broker.js';
import { RedisBroker } from '../../src/broker/redis/redis-broker.js';
import { encodeEvent, type EncodedEvent } from '../../src/protocol/event-frame.js';
import { validateEventInput } from '../../src/protocol/event-input.js';
import { RecordingHandlers } from '../helpers/recording-handlers.js';
import { RedisServer, redisServerMissing } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/wait-for.js';

function note(i: number, id?: string): EncodedEvent {
  const result = validateEventInput({ event: 'note', data: { i }, ...(id ? { id } : {}) }, 1024);
  if (!result.ok) throw new Error(result.failure.message);
  return encodeEvent(result.value);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, k) => from + k);
}

describe.skipIf(redisServerMissing)('RedisBroker faults', () => {
  const cleanups: (() => Promise<void>)[] = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** With AOF, `appendfsync always`: only that proves a restart keeps every write (else new epochs). */
  async function server(appendOnly: boolean): Promise<RedisServer> {
    const made = await RedisServer.start(
      appendOnly ? { appendOnly, appendFsync: 'always' } : { appendOnly },
    );
    cleanups.push(() => made.dispose());
    return made;
  }

  async function node(url: string): Promise<{ broker: RedisBroker; handlers: RecordingHandlers }> {
    const broker = new RedisBroker({ url, commandTimeoutMs: 1_000 });
    const handlers = new RecordingHandlers();
    await broker.start(handlers);
    cleanups.push(() => broker.close());
    return { broker, handlers };
  }

  async function admin(url: string): Promise<Redis> {
    const client = new Redis(url, { lazyConnect: true });
    await client.connect();
    cleanups.push(async () => void client.disconnect());
    return client;
  }

  const user = (): string => `fault-${randomBytes(4).toString('hex')}`;

  it('rejects while Redis is stopped, then loses and repeats nothing after an AOF restart', async () => {
    const redis = await server(true);
    const a = await node(redis.url);
    const b = await node(redis.url);
    const alice = user();
    await a.broker.subscribe(alice);
    let rejections = 0;
    let stopping = false;
    let stopped = false;
    const idOf = (i: number): string => `pub-${i}`;

    // The publisher retries each event with its id until Redis takes it: a
    // reply lost with the link must not turn into a second seq.
    const publisher = (async () => {
      const outcomes: PublishOutcome[] = [];
      for (const i of range(1, 40)) {
        // 11 to 20 race with the SIGTERM (some may be in flight as Redis goes);
        // 21 on start once Redis is gone and are refused until it is back.
        if (i === 11) await waitFor(() => stopping, { what: 'the stop to begin' });
        if (i === 21) await waitFor(() => stopped, { what: 'Redis to exit' });
        outcomes.push(
          await waitFor(
            async () => {
              try {
                return await b.broker.publish(alice, note(i, idOf(i)));
              } catch (error) {
                if (!(error instanceof BrokerUnavailableError)) throw error;
                rejections++;
                return undefined;
              }
            },
            { timeoutMs: 20_000, intervalMs: 20, what: `publish ${i}` },
          ),
        );
      }
      return outcomes;
    })();

    await waitFor(() => a.handlers.seqsOf(alice).length >= 10, { what: '10 events on a' });
    const stop = redis.stop();
    stopping = true;
    await stop;
    stopped = true;
    await waitFor(() => rejections > 0, { what: 'a publish refused while Redis is down' });
    expect(a.broker.health()).toMatchObject({ healthy: false });
    expect(b.broker.health().reason).toMatch(/redis (command|subscriber) link/);
    // Refused fast, not parked until Redis is back.
    const started = performance.now();
    await expect(b.broker.publish(alice, note(0))).rejects.toBeInstanceOf(BrokerUnavailableError);
    expect(performance.now() - started).toBeLessThan(1_000);
    await expect(a.broker.subscribe(user())).rejects.toBeInstanceOf(BrokerUnavailableError);

    await redis.restart();
    const outcomes = await publisher;
    await waitFor(() => a.broker.health().healthy && b.broker.health().healthy, {
      timeoutMs: 10_000,
      what: 'both nodes healthy again',
    });

    expect(outcomes.map((o) => o.seq)).toEqual(range(1, 40));
    expect(new Set(outcomes.map((o) => o.epoch)).size).toBe(1);
    await waitFor(() => a.handlers.seqsOf(alice).length >= 40, {
      timeoutMs: 10_000,
      what: '40 events on a',
    });
    expect(a.handlers.seqsOf(alice)).toEqual(range(1, 40));
    expect(a.handlers.of(alice).map((r) => r.event.id)).toEqual(range(1, 40).map(idOf));
    expect(a.handlers.resyncs).toEqual([]);
    const read = await a.broker.readHistory(alice, { kind: 'acked' });
    expect(read.epoch).toBe(outcomes[0]?.epoch);
    expect(read.events.map((e) => e.id)).toEqual(range(1, 40).map(idOf));
    // Health was reported down and up again through the handler.
    expect(a.handlers.healthChanges.map((h) => h.healthy)).toEqual([true, false, true]);
  });

  it('fills events published while the subscriber link was cut from history, in order, once', async () => {
    const redis = await server(false);
    const a = await node(redis.url);
    const b = await node(redis.url);
    const control = await admin(redis.url);
    const alice = user();
    await a.broker.subscribe(alice);
    for (const i of range(1, 5)) await b.broker.publish(alice, note(i));
    await waitFor(() => a.handlers.seqsOf(alice).length >= 5, { what: '5 events on a' });

    const killed = await control.client('KILL', 'TYPE', 'pubsub');
    expect(killed).toBeGreaterThanOrEqual(2);
    // Published right after the cut: a's subscriber link is reconnecting.
    const subscribersDuringCut = await control.pubsub('NUMSUB', `agentsocket:{u:${alice}}:events`);
    await Promise.all(range(6, 15).map((i) => b.broker.publish(alice, note(i))));

    await waitFor(() => a.handlers.seqsOf(alice).length >= 15, { what: '15 events on a' });
    expect(subscribersDuringCut).toEqual([`agentsocket:{u:${alice}}:events`, 0]);
    expect(a.handlers.seqsOf(alice)).toEqual(range(1, 15));
    expect(a.handlers.resyncs).toEqual([]);
    // The subscription is live again: a later event arrives without a catch-up gap.
    await b.broker.publish(alice, note(16));
    await waitFor(() => a.handlers.seqsOf(alice).includes(16), { what: 'seq 16 on a' });
    expect(a.handlers.seqsOf(alice)).toEqual(range(1, 16));
    // Broadcasts are subscribed again too.
    await b.broker.broadcast('{"type":"broadcast"}');
    await waitFor(() => a.handlers.broadcasts.length >= 1, { what: 'broadcast after the cut' });
  });

  it('raises onResync and follows the new epoch after a restart that lost the data', async () => {
    const redis = await server(false);
    const a = await node(redis.url);
    const b = await node(redis.url);
    const alice = user();
    await a.broker.subscribe(alice);
    const before = await b.broker.publish(alice, note(1));
    await b.broker.publish(alice, note(2));
    await waitFor(() => a.handlers.seqsOf(alice).length >= 2, { what: '2 events on a' });

    await redis.restart();
    await waitFor(() => a.handlers.resyncs.includes(alice), {
      timeoutMs: 10_000,
      what: 'onResync for alice on a',
    });
    await waitFor(() => b.broker.health().healthy, { what: 'b healthy again' });
    const after = await b.broker.publish(alice, note(3));
    expect(after.epoch).not.toBe(before.epoch);
    expect(after.seq).toBe(1);
    await waitFor(() => a.handlers.of(alice).length >= 3, { what: 'the new-epoch event on a' });
    expect(a.handlers.of(alice).map((r) => [r.epoch, r.event.seq])).toEqual([
      [before.epoch, 1],
      [before.epoch, 2],
      [after.epoch, 1],
    ]);
    // An old cursor now reads as a gap in the new stream.
    const read = await a.broker.readHistory(alice, {
      kind: 'position',
      seq: 2,
      epoch: before.epoch,
    });
    expect(read).toMatchObject({ epoch: after.epoch, headSeq: 1, gap: true });
  });
});
