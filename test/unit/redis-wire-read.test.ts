/**
 * A history read of the Redis engine (`wire.ts`, `decodeEvents`): the read
 * script's flat reply, bulk values as Buffers, becomes events framed once
 * from the payload's bytes. The frame must be the one the gateway builds
 * from the same fields (`encodeEventFrame`), at every header size and for
 * payloads of more than one byte per character; a malformed reply rejects.
 */
import { describe, expect, it } from 'vitest';
import { StoredEvent } from '../../src/broker/stored-event.js';
import { decodeEvents } from '../../src/broker/redis/wire.js';
import { READ_VALUES_PER_EVENT } from '../../src/broker/redis/scripts.js';
import { EventFramer } from '../../src/gateway/event-framer.js';
import { encodeTextFrame } from '../../src/gateway/wire-frame.js';
import { encodeEvent, encodeEventFrame } from '../../src/protocol/event-frame.js';
import { validateEventInput, type EventInput } from '../../src/protocol/event-input.js';

function payloadOf(input: EventInput): string {
  const result = validateEventInput(input, 1024 * 1024);
  if (!result.ok) throw new Error(result.failure.message);
  return encodeEvent(result.value).payload;
}

/** What the read script returns for one event (scripts.ts, READ_SCRIPT). */
function entry(seq: number, ts: number, critical: 0 | 1, id: string, by: string, payload: string) {
  return [seq, ts, critical, Buffer.from(id), Buffer.from(by), Buffer.from(payload, 'utf8')];
}

describe('decodeEvents', () => {
  it('frames each event from its payload bytes, at every header size', () => {
    const texts = ['', 'héllo ✓ 😀', 'x'.repeat(200), 'é'.repeat(40_000), 'y'.repeat(70_000)];
    const payloads = texts.map((text) =>
      payloadOf({ event: 'token', data: { text }, runId: 'r-1', critical: false }),
    );
    const flat = payloads.flatMap((payload, i) =>
      entry(i + 1, 1000 + i, 0, `ev_${i}`, '', payload),
    );
    const events = decodeEvents(flat);
    expect(events).toHaveLength(payloads.length);
    events.forEach((event, i) => {
      const payload = payloads[i]!;
      const text = encodeEventFrame({ seq: i + 1, id: `ev_${i}`, ts: 1000 + i, payload });
      expect(event).toBeInstanceOf(StoredEvent);
      expect(event.wire.equals(encodeTextFrame(text))).toBe(true);
      expect(event).toMatchObject({ seq: i + 1, ts: 1000 + i, critical: false, id: `ev_${i}` });
      expect(event.payload).toBe(payload);
      expect(event.payloadBytes).toBe(Buffer.byteLength(payload, 'utf8'));
      expect(event.event).toBe('token');
      expect(event.awaitedBy).toBeUndefined();
      const framer = new EventFramer();
      expect(framer.text(event)).toBe(text);
      expect(framer.runIdOf(event)).toBe('r-1');
    });
  });

  it('reads critical and awaitedBy', () => {
    const payload = payloadOf({ event: 'order', data: 1, critical: true });
    const [event] = decodeEvents(entry(4, 5, 1, 'p-1', 'node-a', payload));
    expect(event).toMatchObject({ seq: 4, critical: true, awaitedBy: 'node-a', id: 'p-1' });
  });

  it('takes an empty read', () => {
    expect(decodeEvents([])).toEqual([]);
  });

  it('rejects a reply that is not whole events of the right types', () => {
    const good = entry(1, 2, 0, 'id', '', payloadOf({ event: 'x', data: 1 }));
    expect(() => decodeEvents(good.slice(0, READ_VALUES_PER_EVENT - 1))).toThrow(/malformed/);
    expect(() => decodeEvents('nope')).toThrow(/malformed/);
    for (let i = 0; i < READ_VALUES_PER_EVENT; i++) {
      const bad = [...good];
      bad[i] = typeof bad[i] === 'number' ? Buffer.from('1') : 1;
      expect(() => decodeEvents(bad)).toThrow(/malformed/);
    }
  });
});
