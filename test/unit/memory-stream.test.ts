/**
 * The memory engine's stream keeps its events as frames in a byte slab and
 * numbers (`memory-stream.ts`). A frame handed out (to a socket queue) must
 * never change when the slab moves on; reads must return the events as the
 * publish made them; and the slab stays within about twice the live frames (2.25 times at most,
 * or two of the smallest chunks more).
 */
import { describe, expect, it } from 'vitest';
import { MAX_CHUNK_BYTES, MIN_CHUNK_BYTES } from '../../src/broker/memory-slab.js';
import { MemoryStream } from '../../src/broker/memory-stream.js';
import { StoredEvent } from '../../src/broker/stored-event.js';
import { encodeEvent } from '../../src/protocol/event-frame.js';
import { validateEventInput, type EventInput } from '../../src/protocol/event-input.js';

function encoded(input: EventInput) {
  const result = validateEventInput(input, 1024 * 1024);
  if (!result.ok) throw new Error(result.failure.message);
  return encodeEvent(result.value);
}

/** Appends a `token` event of seq `seq` with `text`; returns its frame's size. */
function appendToken(stream: MemoryStream, seq: number, text: string): number {
  return stream.append(
    seq,
    `ev_${seq}`,
    seq,
    encoded({ event: 'token', data: { text } }),
    undefined,
  ).wire.length;
}

describe('MemoryStream', () => {
  it('keeps every frame handed out intact while the slab grows, moves and drops', () => {
    const stream = new MemoryStream('e1', 0);
    const handed: { seq: number; copy: Buffer; view: Buffer }[] = [];
    for (let seq = 1; seq <= 3000; seq++) {
      const text = seq % 97 === 0 ? 'z'.repeat(70_000) : `t${seq}é`.repeat(seq % 7);
      const event = encoded({
        event: 'token',
        data: { text },
        ...(seq % 5 === 0 ? { id: `op-${seq}` } : {}),
      });
      const stored = stream.append(
        seq,
        event.id ?? `ev_${seq}`,
        seq * 10,
        event,
        seq % 11 === 0 ? 'node-1' : undefined,
      );
      expect(stored.payload).toBe(event.payload);
      handed.push({ seq, copy: Buffer.from(stored.wire), view: stored.wire });
      while (stream.length > 200) stream.dropOldest();
    }
    for (const { copy, view } of handed) expect(view.equals(copy)).toBe(true);
    // Reads rebuild the same events, ids and waiting nodes included.
    const read = stream.after(2900);
    expect(read.map((event) => event.seq)).toEqual(Array.from({ length: 100 }, (_, i) => 2901 + i));
    for (const event of read) {
      const original = handed[event.seq - 1]!;
      expect(event.wire.equals(original.copy)).toBe(true);
      expect(event.id).toBe(event.seq % 5 === 0 ? `op-${event.seq}` : `ev_${event.seq}`);
      expect(event.awaitedBy).toBe(event.seq % 11 === 0 ? 'node-1' : undefined);
      expect(event.ts).toBe(event.seq * 10);
      expect(event.event).toBe('token');
    }
    expect(stream.seqOfId('op-2995')).toBe(2995);
    expect(stream.seqOfId('op-2000')).toBeUndefined();
    expect(stream.firstSeq).toBe(2801);
    expect(stream.oldestTs).toBe(28010);
  });

  it('counts payload bytes like the frame, and holds no slab once empty', () => {
    const stream = new MemoryStream('e1', 0);
    let live = 0;
    for (let seq = 1; seq <= 500; seq++) {
      const event = encoded({ event: 'token', data: { text: 'é'.repeat(seq) } });
      const stored = stream.append(seq, `ev_${seq}`, seq, event, undefined);
      expect(stored.payloadBytes).toBe(Buffer.byteLength(event.payload, 'utf8'));
      expect(stored).toEqual(StoredEvent.of(seq, `ev_${seq}`, seq, event, undefined));
      live += stored.wire.length;
      while (stream.length > 50) {
        const first = stream.after(stream.firstSeq - 1)[0]!;
        live -= first.wire.length;
        stream.dropOldest();
      }
      // The slab: at most about twice the live frames, or two of the smallest chunks more.
      expect(stream.slabBytes).toBeLessThanOrEqual(
        Math.max(2.25 * live, live + 2 * MIN_CHUNK_BYTES) + 2 * stored.wire.length,
      );
    }
    expect(stream.bytes).toBe(stream.after(0).reduce((sum, event) => sum + event.payloadBytes, 0));
    while (stream.length > 0) stream.dropOldest();
    expect(stream.bytes).toBe(0);
    expect(stream.slabBytes).toBe(0);
  });

  it('keeps order and times through ring growth, wrap-around and shrinking', () => {
    const stream = new MemoryStream('e1', 0);
    let seq = 0;
    const append = (): void => {
      seq++;
      stream.append(
        seq,
        `ev_${seq}`,
        seq * 3,
        encoded({ event: 'token', data: { n: seq } }),
        undefined,
      );
    };
    const expectStored = (from: number): void => {
      const read = stream.after(0);
      expect(read.map((event) => event.seq)).toEqual(
        Array.from({ length: seq - from + 1 }, (_, i) => from + i),
      );
      for (const event of read) {
        expect(event.ts).toBe(event.seq * 3);
        expect(event.payload).toBe(encoded({ event: 'token', data: { n: event.seq } }).payload);
      }
      expect(stream.oldestTs).toBe(from * 3);
    };
    // Grow well past the smallest ring, wrapping around on the way.
    for (let i = 0; i < 300; i++) {
      append();
      if (i % 3 === 0) stream.dropOldest();
    }
    expectStored(seq - stream.length + 1);
    // Shrink (a TTL sweep): the ring gives back its slack, the order holds.
    while (stream.length > 5) stream.dropOldest();
    expectStored(seq - 4);
    for (let i = 0; i < 40; i++) {
      append();
      stream.dropOldest();
      expectStored(seq - 4);
    }
    while (stream.length > 0) stream.dropOldest();
    expect(stream.after(0)).toEqual([]);
    expect(stream.oldestTs).toBeUndefined();
    append();
    expectStored(seq);
  });

  it('grows its slab by chunks without moving a frame, and lets spent chunks go', () => {
    const stream = new MemoryStream('e1', 0);
    const first = stream.append(
      1,
      'ev_1',
      1,
      encoded({ event: 'token', data: { n: 1 } }),
      undefined,
    );
    let live = first.wire.length;
    let seq = 1;
    // Past many chunks, up to the largest ones: the first frame is never copied.
    while (stream.slabBytes < 6 * MAX_CHUNK_BYTES) {
      seq++;
      const text = 'y'.repeat(seq % 300);
      live += appendToken(stream, seq, text);
    }
    const read = stream.after(0)[0]!;
    expect(read.wire.buffer).toBe(first.wire.buffer);
    expect(read.wire.byteOffset).toBe(first.wire.byteOffset);
    expect(stream.slabBytes).toBeLessThanOrEqual(live + 2 * MAX_CHUNK_BYTES);
    // A sliding window: the spent chunks go, the bound holds all along.
    for (let i = 0; i < 5000; i++) {
      seq++;
      const text = 'z'.repeat((seq * 7) % 400);
      live += appendToken(stream, seq, text);
      while (stream.length > 600) {
        live -= stream.after(stream.firstSeq - 1)[0]!.wire.length;
        stream.dropOldest();
      }
      expect(stream.slabBytes).toBeLessThanOrEqual(
        Math.min(Math.max(2.25 * live, live + 2 * MIN_CHUNK_BYTES), live + 2 * MAX_CHUNK_BYTES) +
          MIN_CHUNK_BYTES,
      );
    }
  });
});
