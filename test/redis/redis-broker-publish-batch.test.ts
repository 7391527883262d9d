/**
 * The publishes of one event-loop turn share one call of the publish script
 * (`publish-batch.ts`): a batch is bounded in events and bytes, each
 * publisher gets its own event's outcome or error, the events of one user
 * keep their publish order, and an error of the call fails every event of
 * it with the error a single publish gets. The calls are seen as Redis sees
 * them, with MONITOR on the test's own redis-server.
 */
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerUnavailableError, type PublishOutcome } from '../../src/broker/broker.js';
import { MAX_BATCH_BYTES, MAX_BATCH_EVENTS } from '../../src/broker/redis/publish-batch.js';
import {
  PUBLISH_ARGS_PER_EVENT,
  PUBLISH_CONSTANT_ARGS,
  PUBLISH_KEYS_PER_EVENT,
} from '../../src/broker/redis/publish-script.js';
import type { RedisBroker } from '../../src/broker/redis/redis-broker.js';
import { RunGrammarError } from '../../src/errors.js';
import { encodeEvent, type EncodedEvent } from '../../src/protocol/event-frame.js';
import { validateEventInput } from '../../src/protocol/event-input.js';
import type { JsonValue } from '../../src/protocol/frames.js';
import { redisServerMissing } from '../helpers/redis-server.js';
import { useRedisSuite } from '../helpers/redis-suite.js';
import { waitFor } from '../helpers/wait-for.js';

function encoded(input: Record<string, JsonValue>): EncodedEvent {
  const result = validateEventInput(input, 1024 * 1024);
  if (!result.ok) throw new Error(result.failure.message);
  return encodeEvent(result.value);
}

function note(id: string, text = id): EncodedEvent {
  return encoded({ event: 'note', id, data: { text } });
}

/** Settles every publish, keeping each outcome or error in its place. */
function settleAll(
  publishes: Promise<PublishOutcome>[],
): Promise<PromiseSettledResult<PublishOutcome>[]> {
  return Promise.allSettled(publishes);
}

function outcomeOf(result: PromiseSettledResult<PublishOutcome> | undefined): PublishOutcome {
  if (result?.status !== 'fulfilled') throw new Error(`not published: ${String(result)}`);
  return result.value;
}

function errorOf(result: PromiseSettledResult<PublishOutcome> | undefined): unknown {
  if (result?.status !== 'rejected') throw new Error('published, an error was expected');
  return result.reason;
}

describe.skipIf(redisServerMissing)('RedisBroker: batched publishes', () => {
  const redis = useRedisSuite();
  const monitors: Redis[] = [];

  afterEach(async () => {
    for (const monitor of monitors.splice(0)) monitor.disconnect();
    await redis.admin.config('SET', 'maxmemory', '0');
    await redis.admin.client('UNPAUSE');
  });

  /** Every publish script call from now on, as its number of events. */
  async function watchCalls(broker: RedisBroker, warmUpUser: string): Promise<number[]> {
    // Loads the script first: a call after NOSCRIPT is sent twice.
    await broker.publish(warmUpUser, note(`warm-${warmUpUser}`));
    const monitor = await redis.admin.monitor();
    monitors.push(monitor);
    const calls: number[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args[0]?.toLowerCase() !== 'evalsha' || args.length < 3) return;
      const keys = Number(args[2]);
      // The publish script's call is the one whose arguments match its
      // event count: EVALSHA, sha, numkeys, keys, constants, events', RUN_GUARD's two.
      const events = keys / PUBLISH_KEYS_PER_EVENT;
      const length = 3 + keys + PUBLISH_CONSTANT_ARGS + events * PUBLISH_ARGS_PER_EVENT + 2;
      if (keys !== 0 && Number.isInteger(events) && args.length === length) calls.push(events);
    });
    return calls;
  }

  it('splits a turn past its event bound into calls of at most that many, in order', async () => {
    const { broker } = await redis.node({ keyPrefix: 'b1' });
    const calls = await watchCalls(broker, 'w');
    const users = ['u0', 'u1', 'u2', 'u3', 'u4'];
    const total = MAX_BATCH_EVENTS * 2 + 17;
    const publishes: Promise<PublishOutcome>[] = [];
    for (let i = 0; i < total; i++) {
      publishes.push(broker.publish(users[i % users.length]!, note(`e${i}`)));
    }
    const outcomes = (await settleAll(publishes)).map(outcomeOf);
    await waitFor(() => calls.reduce((sum, n) => sum + n, 0) === total, {
      what: `calls holding ${total} events`,
    });
    expect(calls).toEqual([MAX_BATCH_EVENTS, MAX_BATCH_EVENTS, 17]);
    // Each user's seqs follow its publish order across the calls.
    for (const [u, userId] of users.entries()) {
      const seqs = outcomes.filter((_, i) => i % users.length === u).map((o) => o.seq);
      expect(seqs).toEqual(seqs.map((_, i) => i + 1));
      const history = await broker.readHistory(userId, { kind: 'acked' });
      expect(history.events.map((event) => event.id)).toEqual(
        publishes.map((_, i) => `e${i}`).filter((_, i) => i % users.length === u),
      );
    }
  });

  it('closes a batch before the event that would pass its byte bound', async () => {
    const { broker } = await redis.node({ keyPrefix: 'b2' });
    const calls = await watchCalls(broker, 'w');
    // Four of these fit in a batch, a fifth would pass the bound.
    const text = 'x'.repeat(Math.floor(MAX_BATCH_BYTES / 4.5));
    const big = 'y'.repeat(MAX_BATCH_BYTES + 1);
    const publishes: Promise<PublishOutcome>[] = [];
    for (let i = 0; i < 10; i++) publishes.push(broker.publish(`u${i}`, note(`e${i}`, text)));
    // One event past the bound on its own goes alone.
    publishes.push(broker.publish('big', note('big', big)));
    publishes.push(broker.publish('u0', note('after-big')));
    const outcomes = (await settleAll(publishes)).map(outcomeOf);
    await waitFor(() => calls.reduce((sum, n) => sum + n, 0) === 12, {
      what: 'calls holding 12 events',
    });
    expect(calls).toEqual([4, 4, 2, 1, 1]);
    expect(outcomes.map((o) => o.seq)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2]);
    const stored = await broker.readHistory('big', { kind: 'acked' });
    expect(stored.events[0]?.payload).toContain(big);
  });

  it("refuses one event's run grammar without failing the others of its batch", async () => {
    const { broker } = await redis.node({ keyPrefix: 'b3' });
    const calls = await watchCalls(broker, 'w');
    const publishes = [
      broker.publish('alice', note('a1')),
      // Bob's run was never started: strict mode refuses, no seq drawn.
      broker.publish(
        'bob',
        encoded({ event: 'agent_text', runId: 'r1', id: 'b1', data: { text: 'hi' } }),
      ),
      broker.publish('carol', note('c1')),
      broker.publish(
        'bob',
        encoded({ event: 'agent_started', runId: 'r2', id: 'b2', data: { agent: 'a' } }),
      ),
      broker.publish('bob', note('b3')),
    ];
    const results = await settleAll(publishes);
    await waitFor(() => calls.length === 1, { what: 'one call' });
    expect(calls).toEqual([5]);
    expect(outcomeOf(results[0]).seq).toBe(1);
    const refusal = errorOf(results[1]);
    expect(refusal).toBeInstanceOf(RunGrammarError);
    expect((refusal as RunGrammarError).code).toBe('run_not_started');
    expect(outcomeOf(results[2]).seq).toBe(1);
    expect(outcomeOf(results[3]).seq).toBe(1);
    expect(outcomeOf(results[4]).seq).toBe(2);
    const bob = await broker.readHistory('bob', { kind: 'acked' });
    expect(bob.events.map((event) => event.id)).toEqual(['b2', 'b3']);
  });

  it('keeps each user in publish order, live and in history, when users interleave in a turn', async () => {
    const { broker, handlers } = await redis.node({ keyPrefix: 'b4' });
    const users = ['p', 'q', 'r', 's'];
    for (const userId of users) await broker.subscribe(userId);
    const perUser = 80;
    const publishes: Promise<PublishOutcome>[] = [];
    // Uneven interleaving: user i publishes i + 1 events per round.
    const published = new Map<string, string[]>(users.map((u) => [u, []]));
    for (let round = 0; published.get('p')!.length < perUser; round++) {
      for (const [i, userId] of users.entries()) {
        for (let k = 0; k <= i; k++) {
          const ids = published.get(userId)!;
          if (ids.length >= perUser) continue;
          const id = `${userId}-${ids.length}`;
          ids.push(id);
          publishes.push(broker.publish(userId, note(id)));
        }
      }
    }
    const outcomes = (await settleAll(publishes)).map(outcomeOf);
    for (const userId of users) {
      const mine = outcomes.filter((o) => o.id.startsWith(`${userId}-`));
      expect(mine.map((o) => o.id)).toEqual(published.get(userId));
      expect(mine.map((o) => o.seq)).toEqual(mine.map((_, i) => i + 1));
      await waitFor(() => (handlers.events.get(userId)?.length ?? 0) >= perUser, {
        what: `${perUser} live events of ${userId}`,
      });
      const live = handlers.events.get(userId)!.map((e) => e.event);
      expect(live.map((e) => e.id)).toEqual(published.get(userId));
      expect(live.map((e) => e.seq)).toEqual(live.map((_, i) => i + 1));
    }
  });

  it('trims, dedupes and sets the TTLs of one user whose events fill a call', async () => {
    const ttl = 60_000;
    let now = 5_000_000;
    const { broker } = await redis.node({
      keyPrefix: 'b8',
      historySize: 5,
      historyTtlMs: ttl,
      clock: () => now,
    });
    const calls = await watchCalls(broker, 'w');
    for (const id of ['old1', 'old2', 'old3']) await broker.publish('u', note(id));
    // Past the age limit: the call's first event finds every entry expired,
    // the ids hash emptied (and deleted by Redis), and starts it again.
    now += ttl + 1;
    const ids = Array.from({ length: 9 }, (_, i) => `n${i}`);
    const publishes = ids.map((id) => broker.publish('u', note(id)));
    publishes.push(broker.publish('u', note('n8')), broker.publish('u', note('n2')));
    const outcomes = (await settleAll(publishes)).map(outcomeOf);
    await waitFor(() => calls.reduce((sum, n) => sum + n, 0) === 3 + 11, {
      what: 'the calls',
    });
    expect(calls).toEqual([1, 1, 1, 11]);
    expect(outcomes.map((o) => o.seq)).toEqual([4, 5, 6, 7, 8, 9, 10, 11, 12, 12, 13]);
    expect(outcomes.map((o) => o.duplicate)).toEqual([...ids.map(() => false), true, false]);
    // n8 is a repeat of an event of the same call; n2 was trimmed by count
    // within the call, its id left with it: a new event, as across calls.
    const history = await broker.readHistory('u', { kind: 'acked' });
    expect(history.events.map((event) => event.id)).toEqual(['n5', 'n6', 'n7', 'n8', 'n2']);
    expect(Object.keys(await redis.admin.hgetall('b8:{u:u}:ids')).sort()).toEqual(
      ['n2', 'n5', 'n6', 'n7', 'n8'].sort(),
    );
    for (const key of ['ids', 'hist']) {
      expect(await redis.admin.pttl(`b8:{u:u}:${key}`), key).toBeGreaterThan(ttl - 600);
    }
  });

  it('fails every event of a call that times out with the error a single publish gets', async () => {
    const { broker } = await redis.node({ keyPrefix: 'b5', commandTimeoutMs: 300 });
    await broker.publish('w', note('warm'));
    // Scripts wait while writes are paused: the call outlives its timeout.
    await redis.admin.client('PAUSE', 5_000, 'WRITE');
    const single = await settleAll([broker.publish('solo', note('s1'))]);
    const batch = await settleAll([
      broker.publish('alice', note('a1')),
      broker.publish('bob', note('b1')),
      broker.publish('alice', note('a2')),
    ]);
    await redis.admin.client('UNPAUSE');
    const expected = errorOf(single[0]);
    expect(expected).toBeInstanceOf(BrokerUnavailableError);
    for (const result of batch) {
      const error = errorOf(result);
      expect(error).toBeInstanceOf(BrokerUnavailableError);
      expect((error as Error).message).toBe((expected as Error).message);
    }
  });

  it("gives an event its own Redis error, as a single publish gets it, and the batch's others go on", async () => {
    const { broker } = await redis.node({ keyPrefix: 'b6' });
    await broker.publish('w', note('warm'));
    // Mallory's meta is not a hash: every command on it is refused.
    await redis.admin.set('b6:{u:mallory}:meta', 'not a hash');
    const single = await settleAll([broker.publish('mallory', note('m0'))]);
    const batch = await settleAll([
      broker.publish('alice', note('a1')),
      broker.publish('mallory', note('m1')),
      broker.publish('bob', note('b1')),
    ]);
    const expected = errorOf(single[0]) as Error;
    expect(expected.name).toBe('ReplyError');
    expect(expected.message).toMatch(/^WRONGTYPE/);
    const error = errorOf(batch[1]) as Error;
    expect(error.name).toBe(expected.name);
    expect(error.message).toBe(expected.message);
    expect(outcomeOf(batch[0]).seq).toBe(1);
    expect(outcomeOf(batch[2]).seq).toBe(1);
  });

  it('fails every event of a batch refused for memory as a single publish is refused', async () => {
    const { broker } = await redis.node({ keyPrefix: 'b7' });
    // Streams that exist: the first write of each event is its seq, which
    // Redis refuses past maxmemory. (A script that wrote once may go on:
    // Redis cannot stop a script halfway. So a batch, as a single event
    // before it, can pass maxmemory by what it holds once its first write
    // ran; see docs/redis.md.)
    for (const userId of ['solo', 'alice', 'bob'])
      await broker.publish(userId, note(`w-${userId}`));
    await redis.admin.config('SET', 'maxmemory', '1');
    const single = await settleAll([broker.publish('solo', note('s1'))]);
    const batch = await settleAll([
      broker.publish('alice', note('a1')),
      broker.publish('bob', note('b1')),
    ]);
    await redis.admin.config('SET', 'maxmemory', '0');
    const expected = errorOf(single[0]) as Error;
    expect(expected).toBeInstanceOf(BrokerUnavailableError);
    expect(expected.message).toMatch(/^redis unavailable: OOM/);
    for (const result of batch) {
      const error = errorOf(result) as Error;
      expect(error).toBeInstanceOf(BrokerUnavailableError);
      expect(error.message).toBe(expected.message);
    }
    // Nothing of the refused events was stored.
    const alice = await broker.readHistory('alice', { kind: 'acked' });
    expect(alice.events.map((event) => event.id)).toEqual(['w-alice']);
  });
});
