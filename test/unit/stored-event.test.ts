/**
 * The memory engine keeps each event as its WebSocket frame (`StoredEvent`):
 * the payload decoded from the bytes must be the payload it was given, the
 * byte count the one the history limits count, and the node must read the
 * same frame, text and run id from it as from an event it frames itself.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StoredEvent } from '../../src/broker/stored-event.js';
import { EventFramer } from '../../src/gateway/event-framer.js';
import { encodeTextFrame } from '../../src/gateway/wire-frame.js';
import { encodeEvent, encodeEventFrame } from '../../src/protocol/event-frame.js';
import { validateEventInput, type EventInput } from '../../src/protocol/event-input.js';
import type { JsonValue } from '../../src/protocol/frames.js';

function encoded(input: EventInput) {
  const result = validateEventInput(input, 1024 * 1024);
  if (!result.ok) throw new Error(result.failure.message);
  return encodeEvent(result.value);
}

describe('StoredEvent', () => {
  it('keeps the payload, its UTF-8 size and the frame a node would build, at every header size', () => {
    for (const text of [
      '',
      'héllo ✓ 😀',
      'x'.repeat(200),
      'é'.repeat(40_000),
      'y'.repeat(70_000),
    ]) {
      const event = encoded({ event: 'token', data: { text }, runId: 'r-1', critical: false });
      const stored = StoredEvent.of(9, 'ev_a1', 1234, event, undefined);
      expect(stored.payload).toBe(event.payload);
      expect(stored.id).toBe('ev_a1');
      expect(stored.payloadBytes).toBe(Buffer.byteLength(event.payload, 'utf8'));
      const text_ = encodeEventFrame({ seq: 9, id: 'ev_a1', ts: 1234, payload: event.payload });
      expect(stored.wire.equals(encodeTextFrame(text_))).toBe(true);
      const framer = new EventFramer();
      expect(framer.wire(stored)).toBe(stored.wire);
      expect(framer.text(stored)).toBe(text_);
      expect(framer.runIdOf(stored)).toBe('r-1');
    }
  });

  it('frames an event given as a payload alone (no parts) the same way', () => {
    const event = encoded({ event: 'token', data: { text: 'é'.repeat(30_000) } });
    const whole = { event: event.event, critical: event.critical, payload: event.payload };
    const a = StoredEvent.of(2, 'ev_c', 3, event, undefined);
    const b = StoredEvent.of(2, 'ev_c', 3, whole, undefined);
    expect(a.wire.equals(b.wire)).toBe(true);
    expect(b.payload).toBe(event.payload);
    expect(b.payloadBytes).toBe(a.payloadBytes);
  });

  it('round-trips any JSON data', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (data) => {
        const event = encoded({ event: 'custom.x', data: data as JsonValue, id: 'op-1' });
        const stored = StoredEvent.of(1, 'op-1', 5, event, 'node-1');
        expect(stored.payload).toBe(event.payload);
        expect(stored.awaitedBy).toBe('node-1');
        expect(stored.id).toBe('op-1');
      }),
    );
  });

  it('writes the bytes of the frame text for any seq, time stamp, id, event and data', () => {
    // The prefix's digits and constants are written straight into the bytes,
    // and consecutive events share a payload head: check both against the text.
    const ref = fc.stringMatching(/^[A-Za-z0-9._:@/+=-]{1,20}$/);
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            seq: fc.oneof(fc.integer({ min: 1, max: 20 }), fc.maxSafeNat()),
            ts: fc.oneof(fc.constant(1_796_332_451_286), fc.maxSafeNat(), fc.double()),
            id: fc.oneof(fc.constant('ev_x_1'), ref),
            event: fc.constantFrom('token', 'custom.x'),
            runId: fc.option(fc.constantFrom('r1', 'r2'), { nil: undefined }),
            threadId: fc.option(fc.constant('t1'), { nil: undefined }),
            critical: fc.boolean(),
            data: fc.jsonValue(),
          }),
          { minLength: 1, maxLength: 6 },
        ),
        (events) => {
          for (const { seq, ts, id, data, ...input } of events) {
            const event = encoded({
              ...input,
              data: data as JsonValue,
              ...(input.runId === undefined ? {} : { runId: input.runId }),
              ...(input.threadId === undefined ? {} : { threadId: input.threadId }),
            });
            const text = encodeEventFrame({ seq, id, ts, payload: event.payload });
            // The head names this event's own name, run, thread and critical flag.
            const { data: _data, ...head } = JSON.parse(`{${event.payload}`) as Record<
              string,
              unknown
            >;
            expect(head).toEqual({
              event: input.event,
              ...(input.runId === undefined ? {} : { runId: input.runId }),
              ...(input.threadId === undefined ? {} : { threadId: input.threadId }),
              critical: input.critical,
            });
            const stored = StoredEvent.of(seq, id, ts, event, undefined);
            expect(stored.wire.equals(encodeTextFrame(text))).toBe(true);
            expect(stored.payload).toBe(event.payload);
            expect(stored.id).toBe(id);
          }
        },
      ),
    );
  });

  it('finds no run id in the data of an event outside any run', () => {
    const trap = { ts: 1, event: 'x', runId: 'evil' };
    const event = encoded({ event: 'custom.x', data: trap as JsonValue });
    const stored = StoredEvent.of(3, 'ev_b2', 7, event, undefined);
    const framer = new EventFramer();
    expect(framer.runIdOf(stored)).toBeUndefined();
    const inRun = StoredEvent.of(
      4,
      'ev_b3',
      8,
      encoded({ event: 'custom.x', runId: 'run.9', data: trap as JsonValue }),
      undefined,
    );
    expect(framer.runIdOf(inRun)).toBe('run.9');
  });
});
