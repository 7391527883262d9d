/**
 * A history read returns the stored events whatever the order of an entry's
 * fields: the read script takes each field at its place in the layout the
 * publish script writes (`scripts.ts`), and looks it up by name in an entry
 * laid out otherwise. The events come framed (`StoredEvent`), the frame the
 * gateway would build from the same fields, built by the read script.
 */
import { describe, expect, it } from 'vitest';
import { encodeEvent, encodeEventFrame } from '../../src/protocol/event-frame.js';
import { validateEventInput } from '../../src/protocol/event-input.js';
import { encodeTextFrame } from '../../src/gateway/wire-frame.js';
import { redisServerMissing } from '../helpers/redis-server.js';
import { useRedisSuite } from '../helpers/redis-suite.js';

function note(text: string) {
  const result = validateEventInput({ event: 'note', data: { text } }, 1024 * 1024);
  if (!result.ok) throw new Error(result.failure.message);
  return encodeEvent(result.value);
}

describe.skipIf(redisServerMissing)('RedisBroker history read layout', () => {
  const redis = useRedisSuite();

  it('reads an entry with its fields in another order, between entries it wrote', async () => {
    const { broker } = await redis.node({ keyPrefix: 'lay' });
    const first = await broker.publish('u', note('first ✓'));
    // Seq 2 appended by hand, its fields reversed, as another writer might.
    const payload = note('by hand é').payload;
    const ts = Date.now();
    await redis.admin.hincrby('lay:{u:u}:meta', 'seq', 1);
    await redis.admin.xadd(
      'lay:{u:u}:hist',
      '2-0',
      ...['p', payload, 'a', 'node-x', 't', String(ts), 'c', '1', 'e', 'note', 'i', 'hand-2'],
    );
    await broker.publish('u', note('third'));
    const read = await broker.readHistory('u', {
      kind: 'position',
      seq: 0,
      epoch: first.epoch,
    });
    expect(read.gap).toBe(false);
    expect(read.events.map((event) => event.seq)).toEqual([1, 2, 3]);
    const byHand = read.events[1]!;
    expect(byHand).toMatchObject({
      seq: 2,
      id: 'hand-2',
      event: 'note',
      critical: true,
      ts,
      payload,
      awaitedBy: 'node-x',
    });
    expect(byHand.wire).toEqual(
      encodeTextFrame(encodeEventFrame({ seq: 2, id: 'hand-2', ts, payload })),
    );
    expect(read.events[0]!.payload).toBe(note('first ✓').payload);
    expect(read.events[0]!.awaitedBy).toBeUndefined();
  });

  it('frames each event as the gateway would, at every header size', async () => {
    const { broker } = await redis.node({ keyPrefix: 'frm' });
    const texts = ['', 'héllo ✓ 😀', 'x'.repeat(200), 'é'.repeat(40_000), 'y'.repeat(70_000)];
    let epoch = '';
    for (const text of texts) epoch = (await broker.publish('u', note(text))).epoch;
    const read = await broker.readHistory('u', { kind: 'position', seq: 0, epoch });
    expect(read.events).toHaveLength(texts.length);
    read.events.forEach((event, i) => {
      const { payload } = note(texts[i]!);
      expect(event.payload).toBe(payload);
      const text = encodeEventFrame({ seq: i + 1, id: event.id, ts: event.ts, payload });
      expect(event.wire?.equals(encodeTextFrame(text)), `event ${i + 1}`).toBe(true);
      expect(event.id).toMatch(/^ev_/);
    });
  });
});
