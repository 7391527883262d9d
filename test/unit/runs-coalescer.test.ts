import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeServerFrame,
  encodeMergedDeltaFrame,
  utf8ByteLength,
  type EventFrame,
} from '../../src/protocol/index.js';
import {
  DEFAULT_MAX_MERGED_TEXT_BYTES,
  DeltaCoalescer,
  coalesceEvents,
  pendingItemFromFrame,
  pendingItemOf,
  type PendingItem,
  type StreamEvent,
  type TakenFrames,
} from '../../src/runs/delta-coalescer.js';
import {
  broadcastFrame,
  encodeEvent,
  streamArbitrary,
  type StreamEntry,
} from '../helpers/run-stream.js';

function delta(seq: number, text: string, more: Partial<StreamEvent> = {}): StreamEvent {
  return {
    seq,
    id: `ev_${seq}`,
    event: 'agent_thinking',
    runId: 'r1',
    ts: 1000 + seq,
    critical: false,
    data: { text },
    ...more,
  };
}

function item(event: StreamEvent): PendingItem {
  return pendingItemOf(encodeEvent(event), event);
}

function itemOf(entry: StreamEntry): PendingItem {
  return entry.kind === 'event'
    ? pendingItemOf(entry.frame, entry.event)
    : { kind: 'frame', frame: entry.frame, bytes: utf8ByteLength(entry.frame) };
}

function decode(frame: string): EventFrame {
  const decoded = decodeServerFrame(frame);
  if (!decoded.ok || decoded.frame.type !== 'event') throw new Error(`not an event: ${frame}`);
  return decoded.frame;
}

describe('merged delta frames', () => {
  it('encodes a merged delta as an event frame with seqFrom, escaping free text', () => {
    const frame = encodeMergedDeltaFrame({
      seqFrom: 4,
      seq: 6,
      id: 'ev_6',
      event: 'agent_text',
      runId: 'r1',
      threadId: 't1',
      ts: 1732470000000,
      text: 'a "quote"\n',
      messageId: 'm/1',
    });
    expect(frame).toBe(
      '{"type":"event","seq":6,"seqFrom":4,"id":"ev_6","event":"agent_text","runId":"r1",' +
        '"threadId":"t1","ts":1732470000000,"critical":false,' +
        '"data":{"text":"a \\"quote\\"\\n","messageId":"m/1"}}',
    );
    expect(decode(frame)).toMatchObject({ seq: 6, seqFrom: 4, data: { text: 'a "quote"\n' } });
  });

  it('refuses a frame whose seqFrom is not a seq at or below seq', () => {
    for (const seqFrom of [7, -1, 1.5, '3']) {
      const text = JSON.stringify({ type: 'event', seq: 6, seqFrom, id: 'e', event: 'x' });
      expect(decodeServerFrame(text)).toEqual({
        ok: false,
        message: 'event.seqFrom must be a non-negative integer not above seq',
      });
    }
  });
});

describe('DeltaCoalescer', () => {
  it('merges adjacent deltas of one run into one frame standing for their range', () => {
    const queue = new DeltaCoalescer();
    for (const [seq, text] of [
      [3, 'Hel'],
      [4, 'lo, '],
      [5, 'wörld'],
    ] as const) {
      expect(queue.push(item(delta(seq, text, { threadId: 't' })))).toBe(true);
    }
    expect(queue.length).toBe(1);
    const taken = queue.takeAll();
    expect(taken).toMatchObject({ items: 3, coalesced: 2, lastSeq: 5 });
    expect(taken.frames.map(decode)).toEqual([
      {
        type: 'event',
        seq: 5,
        seqFrom: 3,
        id: 'ev_5',
        event: 'agent_thinking',
        runId: 'r1',
        threadId: 't',
        ts: 1005,
        critical: false,
        data: { text: 'Hello, wörld' },
      },
    ]);
    expect(queue.takeAll()).toEqual({ frames: [], items: 0, coalesced: 0 });
  });

  it('writes a delta nothing merged with as its original frame', () => {
    const single = delta(1, 'x');
    const queue = new DeltaCoalescer();
    queue.push(item(single));
    expect(queue.takeAll().frames).toEqual([encodeEvent(single)]);
  });

  it.each([
    ['a critical delta', delta(2, 'b', { critical: true })],
    ['another run', delta(2, 'b', { runId: 'r2' })],
    ['another kind', delta(2, 'b', { event: 'agent_text' })],
    [
      'a tool event',
      delta(2, 'b', { event: 'tool_completed', data: { toolCallId: 'c', tool: 't' } }),
    ],
    ['a delta with another field', delta(2, 'b', { data: { text: 'b', extra: 1 } })],
    ['another thread', delta(2, 'b', { threadId: 't2' })],
  ])('does not merge across %s, and keeps the order', (_, barrier) => {
    const events = [delta(1, 'a'), barrier, delta(barrier.seq + 1, 'c')];
    const { frames } = coalesceEvents(events.map(item));
    expect(frames).toEqual(events.map(encodeEvent));
  });

  it('does not merge across a seq that does not follow (a range stands for every seq in it)', () => {
    const events = [delta(1, 'a'), delta(3, 'b'), delta(4, 'c')];
    const { frames } = coalesceEvents(events.map(item));
    expect(frames.map(decode).map((f) => [f.seqFrom, f.seq])).toEqual([
      [undefined, 1],
      [3, 4],
    ]);
  });

  it('keeps deltas of different messages apart', () => {
    const text = (seq: number, messageId?: string): StreamEvent =>
      delta(seq, `${seq}`, {
        event: 'agent_text',
        data: messageId === undefined ? { text: `${seq}` } : { text: `${seq}`, messageId },
      });
    const { frames } = coalesceEvents(
      [text(1, 'a'), text(2, 'a'), text(3, 'b'), text(4), text(5)].map(item),
    );
    expect(frames.map(decode).map((f) => [f.seqFrom, f.seq, f.data])).toEqual([
      [1, 2, { text: '12', messageId: 'a' }],
      [undefined, 3, { text: '3', messageId: 'b' }],
      [4, 5, { text: '45' }],
    ]);
  });

  it('does not merge across a broadcast', () => {
    const items = [
      item(delta(1, 'a')),
      pendingItemFromFrame(broadcastFrame(9)),
      item(delta(2, 'b')),
    ];
    expect(coalesceEvents(items).frames).toHaveLength(3);
  });

  it(`starts a new frame when the merged text would pass its cap (default ${DEFAULT_MAX_MERGED_TEXT_BYTES} bytes)`, () => {
    const chunk = 'é'.repeat(4096); // 8 KiB of UTF-8
    const events = Array.from({ length: 20 }, (_, i) => delta(i + 1, chunk));
    const { frames } = coalesceEvents(events.map(item));
    const decoded = frames.map(decode);
    expect(decoded.map((f) => [f.seqFrom, f.seq])).toEqual([
      [1, 8],
      [9, 16],
      [17, 20],
    ]);
    const small = coalesceEvents(events.slice(0, 3).map(item), { maxMergedBytes: 1000 });
    expect(small.frames).toEqual(events.slice(0, 3).map(encodeEvent));
  });

  it('refuses an item past maxItems, but still merges into the last frame', () => {
    const queue = new DeltaCoalescer({ maxItems: 2 });
    expect(queue.push(item(delta(1, 'a')))).toBe(true);
    expect(queue.push(item(delta(2, 'b', { critical: true })))).toBe(true);
    expect(queue.push(item(delta(3, 'c', { critical: true })))).toBe(false);
    const queue2 = new DeltaCoalescer({ maxItems: 1 });
    expect(queue2.push(item(delta(1, 'a')))).toBe(true);
    expect(queue2.push(item(delta(2, 'b')))).toBe(true);
    expect(queue2.push(item(delta(3, 'c', { runId: 'r2' })))).toBe(false);
    expect(queue2.takeAll().frames.map(decode)[0]?.data).toEqual({ text: 'ab' });
  });

  it('refuses an item past maxBytes, merged or not', () => {
    const first = item(delta(1, 'a'));
    const queue = new DeltaCoalescer({ maxBytes: first.bytes + 3 });
    expect(queue.push(first)).toBe(true);
    expect(queue.push(item(delta(2, 'bc')))).toBe(true);
    expect(queue.bytes).toBe(first.bytes + 2);
    expect(queue.push(item(delta(3, 'de')))).toBe(false);
    expect(queue.push(item(delta(3, 'x', { critical: true })))).toBe(false);
    expect(queue.takeAll().frames.map(decode)[0]?.data).toEqual({ text: 'abc' });
  });

  it('checks its options', () => {
    expect(() => new DeltaCoalescer({ maxItems: 0 })).toThrow(
      'maxItems must be a positive integer',
    );
    expect(() => new DeltaCoalescer({ maxMergedBytes: 1.5 })).toThrow(RangeError);
  });

  it('reads frames back from history, merged ones included', () => {
    const merged = encodeMergedDeltaFrame({
      seqFrom: 1,
      seq: 2,
      id: 'ev_2',
      event: 'agent_thinking',
      runId: 'r1',
      ts: 1002,
      text: 'ab',
    });
    const items = [merged, encodeEvent(delta(3, 'c')), 'not json', broadcastFrame(1)].map(
      pendingItemFromFrame,
    );
    expect(items.map((i) => i.kind)).toEqual(['delta', 'delta', 'frame', 'frame']);
    const { frames } = coalesceEvents(items);
    expect(decode(frames[0]!)).toMatchObject({ seqFrom: 1, seq: 3, data: { text: 'abc' } });
    expect(frames.slice(1)).toEqual(['not json', broadcastFrame(1)]);
    // A frame without `critical` is taken as critical: never merged.
    const bare = JSON.stringify({
      type: 'event',
      seq: 4,
      id: 'e',
      event: 'agent_thinking',
      runId: 'r1',
      ts: 1,
      data: { text: 'x' },
    });
    expect(pendingItemFromFrame(bare).kind).toBe('frame');
  });
});

/**
 * Pushes the stream into one queue, taking everything out at the given
 * points (a connection whose socket drains now and then); all frames in order.
 */
function throughQueue(
  stream: StreamEntry[],
  takes: Set<number>,
  maxMergedBytes: number,
): TakenFrames[] {
  const queue = new DeltaCoalescer({ maxMergedBytes });
  const out: TakenFrames[] = [];
  stream.forEach((entry, i) => {
    expect(queue.push(itemOf(entry))).toBe(true);
    if (takes.has(i)) out.push(queue.takeAll());
  });
  out.push(queue.takeAll());
  return out;
}

/** Each frame as the tokens it stands for: its seqs, or the broadcast frame itself. */
function tokens(frames: string[]): (number | string)[] {
  return frames.flatMap((frame): (number | string)[] => {
    const parsed = JSON.parse(frame) as EventFrame | { type: 'broadcast' };
    if (parsed.type !== 'event') return [frame];
    const from = parsed.seqFrom ?? parsed.seq;
    return Array.from({ length: parsed.seq - from + 1 }, (_, i) => from + i);
  });
}

/** Texts of the deltas per run, kind and message, concatenated in order. */
function textsByMessage(
  events: { event: string; runId?: string; data: unknown }[],
): Map<string, string> {
  const texts = new Map<string, string>();
  for (const e of events) {
    if (e.event !== 'agent_thinking' && e.event !== 'agent_text') continue;
    const data = e.data as { text: string; messageId?: string };
    const key = `${e.runId}/${e.event}/${data.messageId ?? ''}`;
    texts.set(key, (texts.get(key) ?? '') + data.text);
  }
  return texts;
}

const takesArbitrary = fc.uniqueArray(fc.nat(60)).map((points) => new Set(points));
const capArbitrary = fc.oneof(
  fc.integer({ min: 1, max: 24 }),
  fc.constant(DEFAULT_MAX_MERGED_TEXT_BYTES),
);

describe('DeltaCoalescer: properties', () => {
  it('covers every seq exactly once, in order, and nothing overtakes a barrier', () => {
    fc.assert(
      fc.property(streamArbitrary, takesArbitrary, capArbitrary, (stream, takes, cap) => {
        const frames = throughQueue(stream, takes, cap).flatMap((t) => t.frames);
        const expected = stream.map((entry) =>
          entry.kind === 'event' ? entry.event.seq : entry.frame,
        );
        expect(tokens(frames)).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps every text: concatenated per run and message, merged equals raw', () => {
    fc.assert(
      fc.property(streamArbitrary, takesArbitrary, capArbitrary, (stream, takes, cap) => {
        const frames = throughQueue(stream, takes, cap).flatMap((t) => t.frames);
        const raw = stream.flatMap((e) => (e.kind === 'event' ? [e.event] : []));
        const sent = frames
          .map((f) => JSON.parse(f) as EventFrame)
          .filter((f) => f.type === 'event');
        expect(textsByMessage(sent)).toEqual(textsByMessage(raw));
      }),
      { numRuns: 300 },
    );
  });

  it('merges only non-critical plain deltas, within the cap, and writes the rest untouched', () => {
    fc.assert(
      fc.property(streamArbitrary, takesArbitrary, capArbitrary, (stream, takes, cap) => {
        const taken = throughQueue(stream, takes, cap);
        const frames = taken.flatMap((t) => t.frames);
        const originals = new Set(stream.map((e) => e.frame));
        let coalesced = 0;
        for (const frame of frames) {
          if (originals.has(frame)) continue;
          const merged = decode(frame);
          expect(merged.critical).toBe(false);
          expect(['agent_thinking', 'agent_text']).toContain(merged.event);
          expect(merged.seqFrom).toBeLessThan(merged.seq);
          expect(utf8ByteLength((merged.data as { text: string }).text)).toBeLessThanOrEqual(cap);
          coalesced += merged.seq - merged.seqFrom!;
        }
        expect(taken.reduce((sum, t) => sum + t.coalesced, 0)).toBe(coalesced);
        expect(taken.reduce((sum, t) => sum + t.items, 0)).toBe(stream.length);
      }),
      { numRuns: 300 },
    );
  });

  it('coalesceEvents gives what one queue taken once gives', () => {
    fc.assert(
      fc.property(streamArbitrary, (stream) => {
        const [once] = throughQueue(stream, new Set(), DEFAULT_MAX_MERGED_TEXT_BYTES);
        expect(coalesceEvents(stream.map(itemOf))).toEqual(once);
      }),
    );
  });
});
