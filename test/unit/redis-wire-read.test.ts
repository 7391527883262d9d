/**
 * A history read of the Redis engine (`read-reply.ts`, `decodeEvents`): the
 * read script's reply, bulk values as Buffers: every event's whole WebSocket
 * frame, built by the script, one after the other in one value, a `1`/`0`
 * per event for `critical`, and the places and node ids of the events with
 * an `awaitedBy`. Each frame is checked (a whole text frame, the event
 * prefix with its seq and ts, the payload inside it) and written as it is
 * (never decoded); a malformed reply rejects. The script's frames themselves
 * are compared with the gateway's on a real Redis
 * (`test/redis/redis-broker-read-layout.test.ts`).
 */
import { describe, expect, it } from 'vitest';
import { StoredEvent } from '../../src/broker/stored-event.js';
import { decodeEvents, decodeHistoryRead } from '../../src/broker/redis/read-reply.js';
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

interface Entry {
  seq: number;
  ts: number;
  critical: boolean;
  id: string;
  by: string;
  payload: string;
}

function frameOf(entry: Entry): Buffer {
  return encodeTextFrame(encodeEventFrame(entry));
}

/** What the read script returns for these events (scripts.ts, READ_SCRIPT): frames, critical, awaited. */
function reply(entries: Entry[], frames = entries.map(frameOf)): [Buffer, Buffer, unknown[]] {
  const awaited: unknown[] = [];
  entries.forEach((entry, i) => {
    if (entry.by !== '') awaited.push(i + 1, Buffer.from(entry.by));
  });
  return [
    Buffer.concat(frames),
    Buffer.from(entries.map((entry) => (entry.critical ? '1' : '0')).join('')),
    awaited,
  ];
}

function note(seq: number, extra: Partial<Entry> = {}): Entry {
  const payload = payloadOf({ event: 'x', data: seq });
  return { seq, ts: 1000 + seq, critical: false, id: `id-${seq}`, by: '', payload, ...extra };
}

describe('decodeEvents', () => {
  it('takes each frame as it is and reads the event from it, at every header size', () => {
    const texts = ['', 'héllo ✓ 😀', 'x'.repeat(200), 'é'.repeat(40_000), 'y'.repeat(70_000)];
    const entries = texts.map((text, i) => ({
      seq: i + 1,
      ts: 1000 + i,
      critical: false,
      id: `ev_${i}`,
      by: '',
      payload: payloadOf({ event: 'token', data: { text }, runId: 'r-1', critical: false }),
    }));
    const events = decodeEvents(...reply(entries));
    expect(events).toHaveLength(entries.length);
    events.forEach((event, i) => {
      const entry = entries[i]!;
      expect(event).toBeInstanceOf(StoredEvent);
      expect(event.wire.equals(frameOf(entry))).toBe(true);
      expect(event).toMatchObject({ seq: i + 1, ts: 1000 + i, critical: false, id: `ev_${i}` });
      expect(event.payload).toBe(entry.payload);
      expect(event.payloadBytes).toBe(Buffer.byteLength(entry.payload, 'utf8'));
      expect(event.event).toBe('token');
      expect(event.awaitedBy).toBeUndefined();
      const framer = new EventFramer();
      expect(framer.text(event)).toBe(encodeEventFrame(entry));
      expect(framer.runIdOf(event)).toBe('r-1');
    });
  });

  it('keeps the frames in a buffer of their own, not a view of a larger one', () => {
    const [frames, critical, awaited] = reply([note(1), note(2)]);
    // As a value inside a socket read: a view of the read's buffer.
    const socketRead = Buffer.concat([Buffer.from('*8\r\n'), frames, Buffer.alloc(65_536)]);
    const view = socketRead.subarray(4, 4 + frames.length);
    const events = decodeEvents(view, critical, awaited);
    expect(events.map((event) => event.seq)).toEqual([1, 2]);
    for (const event of events) {
      expect(event.wire.buffer).not.toBe(socketRead.buffer);
      // At most Node's pool of small buffers is shared.
      expect(event.wire.buffer.byteLength).toBeLessThanOrEqual(Buffer.poolSize);
    }
    // A value of its own (joined by the parser across reads) is not copied again.
    const own = Buffer.from(new Uint8Array(frames));
    expect(decodeEvents(own, critical, awaited)[0]!.wire.buffer).toBe(own.buffer);
  });

  it('reads critical and awaitedBy, and large seqs and ts', () => {
    const entries = [
      note(4, { critical: true, by: 'node-a', id: 'p-1' }),
      note(5),
      note(2 ** 50, { ts: 2 ** 45, by: 'node-b' }),
    ];
    const events = decodeEvents(...reply(entries));
    expect(events[0]).toMatchObject({ seq: 4, critical: true, awaitedBy: 'node-a', id: 'p-1' });
    expect(events[1]).toMatchObject({ seq: 5, critical: false, awaitedBy: undefined });
    expect(events[2]).toMatchObject({ seq: 2 ** 50, ts: 2 ** 45, awaitedBy: 'node-b' });
  });

  it('takes an empty read', () => {
    expect(decodeEvents(Buffer.alloc(0), Buffer.alloc(0), [])).toEqual([]);
  });

  it('rejects a reply that is not whole events of the right types', () => {
    const entries = [note(1), note(2, { by: 'n' })];
    const [frames, critical, awaited] = reply(entries);
    expect(decodeEvents(frames, critical, awaited)).toHaveLength(2);
    const bad = (f: unknown, c: unknown, a: unknown) => () => decodeEvents(f, c, a);
    expect(bad('nope', critical, awaited)).toThrow(/malformed/);
    expect(bad(frames, '01', awaited)).toThrow(/malformed/);
    expect(bad(frames, critical, 'nope')).toThrow(/malformed/);
    // Frames cut short, or with bytes behind them.
    expect(bad(frames.subarray(0, frames.length - 1), critical, awaited)).toThrow(/malformed/);
    expect(bad(Buffer.concat([frames, Buffer.from('y')]), critical, awaited)).toThrow(/malformed/);
    // A critical flag too few, too many, or not 0/1.
    expect(bad(frames, Buffer.from('0'), awaited)).toThrow(/malformed/);
    expect(bad(frames, Buffer.from('000'), awaited)).toThrow(/malformed/);
    expect(bad(frames, Buffer.from('02'), awaited)).toThrow(/malformed/);
    // awaited: odd, a place out of range or not a number, an empty or non-Buffer id.
    for (const wrong of [
      [1],
      [0, Buffer.from('n')],
      [3, Buffer.from('n')],
      ['1', Buffer.from('n')],
      [1.5, Buffer.from('n')],
      [1, Buffer.alloc(0)],
      [1, 'n'],
    ]) {
      expect(bad(frames, critical, wrong), JSON.stringify(wrong)).toThrow(/malformed/);
    }
  });

  it('rejects a frame whose text is not an event prefix with digits', () => {
    const good = note(1);
    const prefix = encodeEventFramePrefix(1, good.id, good.ts);
    const texts = [
      '{"type":"evenx","seq":1,"id":"id-1","ts":1001,' + good.payload,
      '{"type":"event","seq":,"id":"id-1","ts":1001,' + good.payload,
      '{"type":"event","seq":1x,"id":"id-1","ts":1001,' + good.payload,
      '{"type":"event","seq":1,"id":"id-1","tz":1001,' + good.payload,
      '{"type":"event","seq":1,"id":"id-1","ts":,' + good.payload,
      '{"type":"event","seq":1,"id":"id-1","ts":1001',
      '{"type":"event","seq":1,"id":"id-1',
      '{"type":"event","seq":99999999999999999999,"id":"id-1","ts":1001,' + good.payload,
      prefix.slice(0, 10),
      '',
    ];
    for (const text of texts) {
      const frames = encodeTextFrame(text);
      expect(() => decodeEvents(frames, Buffer.from('0'), []), text).toThrow(/malformed/);
    }
    // A frame of another opcode.
    const binary = frameOf(good);
    binary[0] = 0x82;
    expect(() => decodeEvents(binary, Buffer.from('0'), [])).toThrow(/malformed/);
  });
});

describe('decodeHistoryRead', () => {
  it('reads the numbers of a read and its events', () => {
    const [frames, critical, awaited] = reply([note(3), note(4)]);
    const read = decodeHistoryRead([Buffer.from('ep'), 4, 1, 3, 0, frames, critical, awaited]);
    expect(read).toMatchObject({ epoch: 'ep', headSeq: 4, ackedSeq: 1, from: 3, gap: false });
    expect(read.events.map((event) => event.seq)).toEqual([3, 4]);
    expect(
      decodeHistoryRead([Buffer.from('ep'), 4, 1, 9, 1, Buffer.alloc(0), Buffer.alloc(0), []]),
    ).toMatchObject({ gap: true, from: 9, events: [] });
  });

  it('rejects a malformed reply', () => {
    const empty = [Buffer.alloc(0), Buffer.alloc(0), []];
    for (const wrong of [
      'nope',
      ['ep', 4, 1, 3, 0, ...empty],
      [Buffer.from('ep'), '4', 1, 3, 0, ...empty],
      [Buffer.from('ep'), 4, 1, 3, 0],
    ]) {
      expect(() => decodeHistoryRead(wrong), JSON.stringify(wrong)).toThrow(/malformed/);
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
