/**
 * A history read of the Redis engine (`wire.ts`, `decodeEvents`): the read
 * script's flat reply, bulk values as Buffers, each event with its whole
 * WebSocket frame built by the script. The frame is checked (one whole text
 * frame, the payload inside it) and copied as it is into one buffer per
 * read (never decoded); a malformed reply rejects. The script's frames themselves are compared with the gateway's
 * on a real Redis (`test/redis/redis-broker-read-layout.test.ts`).
 */
import { describe, expect, it } from 'vitest';
import { StoredEvent } from '../../src/broker/stored-event.js';
import { decodeEvents } from '../../src/broker/redis/wire.js';
import { READ_VALUES_PER_EVENT } from '../../src/broker/redis/scripts.js';
import { EventFramer } from '../../src/gateway/event-framer.js';
import { encodeTextFrame, isWholeTextFrame } from '../../src/gateway/wire-frame.js';
import {
  encodeEvent,
  encodeEventFrame,
  encodeEventFramePrefix,
} from '../../src/protocol/event-frame.js';
import { validateEventInput, type EventInput } from '../../src/protocol/event-input.js';

function payloadOf(input: EventInput): string {
  const result = validateEventInput(input, 1024 * 1024);
  if (!result.ok) throw new Error(result.failure.message);
  return encodeEvent(result.value).payload;
}

/** What the read script returns for one event (scripts.ts, READ_SCRIPT). */
function entry(seq: number, ts: number, critical: 0 | 1, id: string, by: string, payload: string) {
  const wire = encodeTextFrame(encodeEventFrame({ seq, id, ts, payload }));
  const payloadAt = wire.length - Buffer.byteLength(payload, 'utf8');
  return [seq, ts, critical, payloadAt, Buffer.from(by), wire];
}

describe('decodeEvents', () => {
  it('takes each frame as it is and reads the event from it, at every header size', () => {
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
      // A copy, not a view of the reply (which is a view of a socket read).
      expect(event.wire).not.toBe(flat[i * READ_VALUES_PER_EVENT + 5]);
      expect(event.wire.equals(flat[i * READ_VALUES_PER_EVENT + 5] as Buffer)).toBe(true);
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
    const wire = good[5] as Buffer;
    const payloadPastTheEnd = [...good];
    payloadPastTheEnd[3] = wire.length + 1;
    expect(() => decodeEvents(payloadPastTheEnd)).toThrow(/malformed/);
    for (const frame of [wire.subarray(0, wire.length - 1), Buffer.concat([wire, wire])]) {
      const notWhole = [...good];
      notWhole[5] = frame;
      expect(() => decodeEvents(notWhole)).toThrow(/malformed/);
    }
  });
});

describe('isWholeTextFrame', () => {
  it('takes the frames encodeTextFrame writes, at every header size', () => {
    for (const length of [0, 125, 126, 65_535, 65_536, 70_000]) {
      expect(isWholeTextFrame(encodeTextFrame('x'.repeat(length))), String(length)).toBe(true);
    }
  });

  it('refuses a frame cut short, with bytes behind it, of another opcode or masked', () => {
    for (const length of [5, 200, 70_000]) {
      const frame = encodeTextFrame('x'.repeat(length));
      expect(isWholeTextFrame(frame.subarray(0, frame.length - 1))).toBe(false);
      expect(isWholeTextFrame(Buffer.concat([frame, Buffer.from('y')]))).toBe(false);
      const binary = Buffer.from(frame);
      binary[0] = 0x82;
      expect(isWholeTextFrame(binary)).toBe(false);
      const masked = Buffer.from(frame);
      masked[1] = masked[1]! | 0x80;
      expect(isWholeTextFrame(masked)).toBe(false);
    }
    expect(isWholeTextFrame(Buffer.alloc(0))).toBe(false);
    expect(isWholeTextFrame(Buffer.from([0x81]))).toBe(false);
    expect(encodeEventFramePrefix(1, 'a', 2)).toBe('{"type":"event","seq":1,"id":"a","ts":2,');
  });
});
