/**
 * The `event` frame is built in protocol/event-frame.ts only: the publisher's
 * payload once per publish, the engine's seq, id and ts in front once per
 * event. Pinned here without an engine; the contract suite pins that every
 * engine carries the payload unchanged.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeEvent, encodeEventFrame } from '../../src/protocol/event-frame.js';
import { validateEventInput, type EventInput } from '../../src/protocol/event-input.js';
import type { JsonValue } from '../../src/protocol/frames.js';

function valid(input: EventInput) {
  const result = validateEventInput(input, 256 * 1024);
  if (!result.ok) throw new Error(result.failure.message);
  return result.value;
}

describe('encodeEvent and encodeEventFrame', () => {
  it('frame the event as JSON with every field, runId and threadId when given', () => {
    const encoded = encodeEvent(
      valid({
        event: 'custom.step',
        runId: 'r-1',
        threadId: 't/2',
        data: { tool: 'x' },
        id: 'op-1',
      }),
    );
    expect(encoded).toMatchObject({ id: 'op-1', event: 'custom.step', critical: false });
    const frame = encodeEventFrame({ seq: 7, id: 'op-1', ts: 1234, payload: encoded.payload });
    expect(JSON.parse(frame)).toEqual({
      type: 'event',
      seq: 7,
      id: 'op-1',
      ts: 1234,
      event: 'custom.step',
      runId: 'r-1',
      threadId: 't/2',
      critical: false,
      data: { tool: 'x' },
    });
  });

  it('leaves out runId, threadId and the id when absent (the engine assigns the id)', () => {
    const encoded = encodeEvent(valid({ event: 'ping.me' }));
    expect('id' in encoded).toBe(false);
    const frame = JSON.parse(encodeEventFrame({ seq: 1, id: 'ev_x', ts: 1, ...encoded })) as object;
    expect(Object.keys(frame).sort()).toEqual(
      ['critical', 'data', 'event', 'id', 'seq', 'ts', 'type'].sort(),
    );
  });

  it('keeps any JSON data exact', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (data) => {
        const encoded = encodeEvent(valid({ event: 'note', data: data as JsonValue }));
        const frame = JSON.parse(encodeEventFrame({ seq: 1, id: 'i', ts: 0, ...encoded })) as {
          data: unknown;
        };
        expect(frame.data).toEqual(JSON.parse(JSON.stringify(data)));
      }),
      { numRuns: 200 },
    );
  });
});
