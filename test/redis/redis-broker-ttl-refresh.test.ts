/**
 * The publish script refreshes the TTLs of a user's keys (stream, ids, meta)
 * only when the stream's has lost more than a small slack (1 % of
 * `historyTtlMs`, at most 1 s), not on every event, and always when the
 * stream was empty before the event: an ids hash emptied by the age trim was
 * deleted, and the event's id makes it again without a TTL. The age trim
 * reads the stream only once its oldest entry, as last seen, is past the
 * age limit (the meta's `o`): each event still leaves at its age. When the
 * TTLs were last set is the meta's `x`, in Redis's clock (no per-event PTTL).
 * An event whose id the engine generated is not kept in the ids hash (it
 * cannot repeat), so the hash can be made again while the stream is not
 * empty: it gets its TTL when it is written.
 */
import { describe, expect, it } from 'vitest';
import { encodeEvent, type EncodedEvent } from '../../src/protocol/event-frame.js';
import { validateEventInput } from '../../src/protocol/event-input.js';
import { redisServerMissing } from '../helpers/redis-server.js';
import { useRedisSuite } from '../helpers/redis-suite.js';
import { waitFor } from '../helpers/wait-for.js';

const TTL = 60_000;
const SLACK = 600;

function note(id: string | undefined): EncodedEvent {
  const input =
    id === undefined ? { event: 'note', data: {} } : { event: 'note', id, data: { id } };
  const result = validateEventInput(input, 1024);
  if (!result.ok) throw new Error(result.failure.message);
  return encodeEvent(result.value);
}

describe.skipIf(redisServerMissing)('RedisBroker TTL refresh', () => {
  const redis = useRedisSuite();

  it('gives the ids hash a TTL again when the age trim emptied the stream', async () => {
    let now = 1_000_000;
    const { broker } = await redis.node({
      keyPrefix: 'ttl1',
      historyTtlMs: TTL,
      clock: () => now,
    });
    await broker.publish('u', note('one'));
    expect(await redis.admin.pttl('ttl1:{u:u}:ids')).toBeGreaterThan(TTL - SLACK);
    // Past the age limit by the node's clock, while Redis keeps the keys:
    // the trim drops `one`, the last id, and Redis deletes the emptied hash.
    now += TTL + 1;
    await broker.publish('u', note('two'));
    expect(await redis.admin.hgetall('ttl1:{u:u}:ids')).toEqual({ two: '2' });
    for (const key of ['ids', 'hist', 'meta']) {
      const ttl = await redis.admin.pttl(`ttl1:{u:u}:${key}`);
      expect(ttl, key).toBeGreaterThan(TTL - SLACK);
    }
  });

  it('refreshes the TTLs once they lost more than the slack', async () => {
    const { broker } = await redis.node({ keyPrefix: 'ttl2', historyTtlMs: TTL });
    await broker.publish('u', note('one'));
    const aged = await waitFor(
      async () => {
        const ttl = await redis.admin.pttl('ttl2:{u:u}:hist');
        return ttl < TTL - SLACK ? ttl : undefined;
      },
      { timeoutMs: 5_000, what: 'the TTL to lose more than the slack' },
    );
    expect(aged).toBeGreaterThan(0);
    await broker.publish('u', note('two'));
    for (const key of ['ids', 'hist']) {
      const ttl = await redis.admin.pttl(`ttl2:{u:u}:${key}`);
      expect(ttl, key).toBeGreaterThan(TTL - SLACK);
      expect(ttl, key).toBeLessThanOrEqual(TTL);
    }
    expect(await redis.admin.pttl('ttl2:{u:u}:meta')).toBeGreaterThan(24 * TTL - SLACK);
  });

  it('drops each event at its age, with the oldest ts kept between trims', async () => {
    let now = 2_000_000;
    const { broker } = await redis.node({ keyPrefix: 'ttl3', historyTtlMs: TTL, clock: () => now });
    const seqsAfter = async (): Promise<number[]> =>
      (await broker.readHistory('u', { kind: 'acked' })).events.map((event) => event.seq);
    await broker.publish('u', note('one'));
    now += TTL / 2;
    await broker.publish('u', note('two'));
    now += TTL / 2 - 1;
    await broker.publish('u', note('three'));
    expect(await seqsAfter()).toEqual([1, 2, 3]);
    now += 2;
    await broker.publish('u', note('four'));
    expect(await seqsAfter()).toEqual([2, 3, 4]);
    now += TTL / 2;
    expect(await seqsAfter()).toEqual([3, 4]);
    now += TTL;
    expect(await seqsAfter()).toEqual([]);
    await broker.publish('u', note('five'));
    expect(await seqsAfter()).toEqual([5]);
  });

  it('keeps no idempotency entry for a generated id, and gives a new ids hash its TTL', async () => {
    const { broker } = await redis.node({ keyPrefix: 'ttl4', historyTtlMs: TTL });
    const first = await broker.publish('u', note(undefined));
    expect(first.id).toMatch(/^ev_/);
    expect(await redis.admin.exists('ttl4:{u:u}:ids')).toBe(0);
    // The stream is not empty and its TTLs are fresh: the hash made now
    // still gets its TTL.
    await broker.publish('u', note('mine'));
    expect(await redis.admin.hgetall('ttl4:{u:u}:ids')).toEqual({ mine: '2' });
    const ttl = await redis.admin.pttl('ttl4:{u:u}:ids');
    expect(ttl).toBeGreaterThan(TTL - SLACK);
    expect(ttl).toBeLessThanOrEqual(TTL);
    expect(await broker.publish('u', note('mine'))).toMatchObject({ seq: 2, duplicate: true });
  });

  it('refreshes the TTLs when the stamp is ahead of Redis time (a clock stepped back)', async () => {
    const { broker } = await redis.node({ keyPrefix: 'ttl5', historyTtlMs: TTL });
    await broker.publish('u', note('one'));
    const [seconds] = await redis.admin.time();
    await redis.admin.hset('ttl5:{u:u}:meta', 'x', (Number(seconds) + 3_600) * 1000);
    await waitFor(
      async () => ((await redis.admin.pttl('ttl5:{u:u}:hist')) < TTL - SLACK ? true : undefined),
      { timeoutMs: 5_000, what: 'the TTL to lose more than the slack' },
    );
    await broker.publish('u', note('two'));
    expect(await redis.admin.pttl('ttl5:{u:u}:hist')).toBeGreaterThan(TTL - SLACK);
  });
});
