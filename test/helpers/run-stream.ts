/**
 * A user's stream of events as plain data, for the coalescer and snapshot
 * tests: each event with its encoded frame, broadcasts (no seq) between them,
 * and a fast-check arbitrary of such streams where deltas of two runs and two
 * messages interleave with barriers of every kind.
 */
import fc from 'fast-check';
import type { EventFrame, JsonValue } from '../../src/protocol/index.js';
import type { StreamEvent } from '../../src/runs/delta-coalescer.js';
import type { RunEventRecord } from '../../src/runs/run-snapshot.js';

export const EPOCH = 'ep1';

/** The `event` frame of an event, fields in wire order (as the broker writes it). */
export function encodeEvent(event: StreamEvent): string {
  const frame: EventFrame = {
    type: 'event',
    seq: event.seq,
    ...(event.seqFrom !== undefined ? { seqFrom: event.seqFrom } : {}),
    id: event.id,
    event: event.event,
    ...(event.runId !== undefined ? { runId: event.runId } : {}),
    ...(event.threadId !== undefined ? { threadId: event.threadId } : {}),
    ts: event.ts,
    critical: event.critical,
    data: event.data,
  };
  return JSON.stringify(frame);
}

export function broadcastFrame(n: number): string {
  return JSON.stringify({ type: 'broadcast', id: `b${n}`, event: 'notice', ts: n, data: null });
}

export type StreamEntry =
  { kind: 'event'; event: StreamEvent; frame: string } | { kind: 'broadcast'; frame: string };

/** What one step of a stream is, before seqs are given out. */
type Shape =
  | {
      t: 'delta';
      run: string;
      event: 'agent_thinking' | 'agent_text';
      text: string;
      messageId?: string;
      critical: boolean;
      extra: boolean;
    }
  | { t: 'barrier'; run: string | undefined; event: string; data: JsonValue; critical: boolean }
  | { t: 'broadcast' };

const text = fc.string({ unit: 'grapheme', maxLength: 6 });

const shape: fc.Arbitrary<Shape> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      t: fc.constant('delta' as const),
      run: fc.constantFrom('r1', 'r2'),
      event: fc.constantFrom('agent_thinking' as const, 'agent_text' as const),
      text,
      messageId: fc.option(fc.constantFrom('m1', 'm2'), { nil: undefined }),
      critical: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
      extra: fc.integer({ min: 0, max: 19 }).map((n) => n === 0),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('barrier' as const),
      run: fc.constantFrom('r1', 'r2', undefined),
      event: fc.constantFrom('tool_completed', 'custom.token'),
      data: fc.constant({ note: 'x' }),
      critical: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ t: 'broadcast' as const }) },
);

/** Gives out seqs 1, 2, … in order (broadcasts take none) and encodes each frame. */
export function buildStream(shapes: Shape[]): StreamEntry[] {
  let seq = 0;
  return shapes.map((s, i): StreamEntry => {
    if (s.t === 'broadcast') return { kind: 'broadcast', frame: broadcastFrame(i) };
    seq++;
    let event: StreamEvent;
    if (s.t === 'delta') {
      const data: { [key: string]: JsonValue } = { text: s.text };
      if (s.event === 'agent_text' && s.messageId !== undefined) data.messageId = s.messageId;
      if (s.extra) data.extra = 1;
      event = {
        seq,
        id: `ev_${seq}`,
        event: s.event,
        runId: s.run,
        ts: 1000 + seq,
        critical: s.critical,
        data,
      };
    } else {
      event = {
        seq,
        id: `ev_${seq}`,
        event: s.event,
        ts: 1000 + seq,
        critical: s.critical,
        data: s.data,
      };
      if (s.run !== undefined) event.runId = s.run;
    }
    return { kind: 'event', event, frame: encodeEvent(event) };
  });
}

export const streamArbitrary: fc.Arbitrary<StreamEntry[]> = fc
  .array(shape, { maxLength: 60 })
  .map(buildStream);

/** The record the snapshot fold takes, from an event of the stream. */
export function recordOf(event: StreamEvent): RunEventRecord {
  const record: RunEventRecord = {
    seq: event.seq,
    epoch: EPOCH,
    event: event.event,
    data: event.data,
    ts: event.ts,
    runId: event.runId!,
  };
  if (event.seqFrom !== undefined) record.seqFrom = event.seqFrom;
  if (event.threadId !== undefined) record.threadId = event.threadId;
  return record;
}
