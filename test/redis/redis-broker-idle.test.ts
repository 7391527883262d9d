/**
 * An idle but connected user keeps its stream: the meta hash (epoch, last
 * seq, acked cursor) outlives the events, so history that expired shows as a
 * `gap` in the same epoch, and the next publish goes on with the next seq,
 * live, with no resync (as the memory broker does).
 */
import { describe, expect, it } from 'vitest';
import { RedisBroker } from '../../src/broker/redis/redis-broker.js';
import { encodeEvent, type EncodedEvent } from '../../src/protocol/event-frame.js';
import { validateEventInput } from '../../src/protocol/event-input.js';
import { RecordingHandlers } from '../helpers/recording-handlers.js';
import { redisServerMissing } from '../helpers/redis-server.js';
import { useRedisSuite } from '../helpers/redis-suite.js';
import { waitFor } from '../helpers/wait-for.js';

function note(i: number): EncodedEvent {
  const result = validateEventInput({ event: 'note', data: { i } }, 1024);
  if (!result.ok) throw new Error(result.failure.message);
  return encodeEvent(result.value);
}

describe.skipIf(redisServerMissing)('RedisBroker with an idle user', () => {
  const redis = useRedisSuite();

  it('keeps the epoch when the events expired: a gap in history, the next seq live', async () => {
    const broker = new RedisBroker({ url: redis.server.url, historyTtlMs: 400 });
    const handlers = new RecordingHandlers();
    await broker.start(handlers);
    try {
      await broker.subscribe('idle');
      const first = await broker.publish('idle', note(1));
      await waitFor(() => handlers.seqsOf('idle').length === 1, { what: 'seq 1 live' });
      // The connection stays; only reads happen (a reconnecting tab, a poll).
      const expired = await waitFor(
        async () => {
          const read = await broker.readHistory('idle', { kind: 'acked' });
          return read.events.length === 0 ? read : undefined;
        },
        { timeoutMs: 5_000, what: 'the event to expire' },
      );
      expect(expired).toMatchObject({ epoch: first.epoch, headSeq: 1, gap: true });

      const second = await broker.publish('idle', note(2));
      expect(second).toMatchObject({ epoch: first.epoch, seq: 2 });
      await waitFor(() => handlers.seqsOf('idle').length === 2, { what: 'seq 2 live' });
      expect(handlers.of('idle').map((r) => [r.epoch, r.event.seq])).toEqual([
        [first.epoch, 1],
        [first.epoch, 2],
      ]);
      expect(handlers.resyncs).toEqual([]);
    } finally {
      await broker.close();
    }
  });
});
