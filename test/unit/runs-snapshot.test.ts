import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { utf8ByteLength, type EventFrame, type JsonValue } from '../../src/protocol/index.js';
import { DeltaCoalescer, pendingItemOf } from '../../src/runs/delta-coalescer.js';
import {
  MIN_RUN_SNAPSHOT_MAX_BYTES,
  applyMergedDelta,
  foldRunEvent,
  foldRunFrame,
  jsonStringBytes,
  measureRunSnapshot,
  type RunEventRecord,
} from '../../src/runs/run-snapshot.js';
import type { RunSnapshot } from '../../src/runs/run-types.js';
import { EPOCH, recordOf, streamArbitrary } from '../helpers/run-stream.js';

/** Events of run r1 from seq 1, ts 1000 + seq. */
function records(steps: [string, JsonValue][], from = 1): RunEventRecord[] {
  return steps.map(([event, data], i) => ({
    seq: from + i,
    epoch: EPOCH,
    event,
    data,
    ts: 1000 + from + i,
    runId: 'r1',
    threadId: 't1',
  }));
}

function fold(events: RunEventRecord[], maxBytes?: number): RunSnapshot {
  let run: RunSnapshot | undefined;
  for (const e of events) run = foldRunEvent(run, e, maxBytes === undefined ? {} : { maxBytes });
  return run!;
}

function size(run: RunSnapshot): number {
  return utf8ByteLength(JSON.stringify(run));
}

describe('foldRunEvent', () => {
  it('folds a run into reasoning, text and tool parts and its completion', () => {
    const run = fold(
      records([
        ['agent_started', { agent: 'researcher', input: 'q' }],
        ['agent_thinking', { text: 'Let me ' }],
        ['agent_thinking', { text: 'look.' }],
        ['tool_executing', { toolCallId: 'c1', tool: 'search', args: { q: 'x' } }],
        ['tool_executing', { toolCallId: 'c2', tool: 'fetch', args: [] }],
        ['tool_completed', { toolCallId: 'c1', tool: 'search', result: [1], durationMs: 12 }],
        ['tool_completed', { toolCallId: 'c2', tool: 'fetch', error: 'timeout' }],
        ['agent_text', { text: 'The answer', messageId: 'm' }],
        ['agent_text', { text: ' is 42.', messageId: 'm' }],
        ['agent_text', { text: 'P.S.' }],
        ['agent_thinking', { text: 'Done?' }],
        ['custom.note', 'ignored'],
        ['agent_text', { text: ' Yes.', messageId: 'm' }],
        ['agent_completed', { status: 'succeeded', result: 'ok', usage: { tokens: 3 } }],
      ]),
    );
    const { sizeBytes, ...rest } = run;
    expect(rest).toEqual({
      runId: 'r1',
      threadId: 't1',
      agent: 'researcher',
      input: 'q',
      status: 'succeeded',
      startedSeq: 1,
      upToSeq: 14,
      epoch: EPOCH,
      startedAt: 1001,
      updatedAt: 1014,
      parts: [
        { kind: 'reasoning', id: 'r2', text: 'Let me look.', open: false },
        {
          kind: 'tool',
          toolCallId: 'c1',
          tool: 'search',
          args: { q: 'x' },
          status: 'completed',
          result: [1],
          durationMs: 12,
        },
        {
          kind: 'tool',
          toolCallId: 'c2',
          tool: 'fetch',
          args: [],
          status: 'failed',
          error: 'timeout',
        },
        { kind: 'text', id: 'm', messageId: 'm', text: 'The answer is 42.', open: false },
        { kind: 'text', id: 'm10', text: 'P.S.', open: false },
        { kind: 'reasoning', id: 'r11', text: 'Done?', open: false },
        { kind: 'text', id: 'm:13', messageId: 'm', text: ' Yes.', open: false },
      ],
      completed: { status: 'succeeded', result: 'ok', usage: { tokens: 3 } },
    });
    expect(sizeBytes).toBeGreaterThanOrEqual(size(run));
  });

  it('lists the tool calls a failed run left open, and keeps the open part open until an event closes it', () => {
    const events = records([
      ['agent_started', { agent: 'a' }],
      ['tool_executing', { toolCallId: 'c1', tool: 't', args: null }],
      ['agent_thinking', { text: 'hm' }],
    ]);
    const run = fold(events);
    expect(run.parts[1]).toEqual({ kind: 'reasoning', id: 'r3', text: 'hm', open: true });
    foldRunEvent(run, records([['agent_completed', { status: 'failed', error: 'boom' }]], 4)[0]!);
    expect(run.status).toBe('failed');
    expect(run.parts[1]).toMatchObject({ open: false });
    expect(run.completed).toEqual({ status: 'failed', error: 'boom', openToolCalls: ['c1'] });
  });

  it('folds what the grammar would refuse (warn/off) without throwing', () => {
    const run = fold(
      records([
        ['agent_thinking', { text: 'no start' }],
        ['tool_completed', { toolCallId: 'x', tool: 't', result: 1 }],
        ['agent_started', { agent: 'late' }],
      ]),
    );
    expect(run).toMatchObject({ agent: '', startedSeq: 1, upToSeq: 3 });
    expect(run.parts[1]).toEqual({
      kind: 'tool',
      toolCallId: 'x',
      tool: 't',
      args: null,
      status: 'completed',
      result: 1,
    });
  });

  it('updates the snapshot in place and returns it', () => {
    const [start, delta] = records([
      ['agent_started', { agent: 'a' }],
      ['agent_thinking', { text: 'x' }],
    ]);
    const run = foldRunEvent(undefined, start!);
    expect(foldRunEvent(run, delta!)).toBe(run);
  });

  it('measures a snapshot stored without sizeBytes and folds on from it', () => {
    const events = records([
      ['agent_started', { agent: 'a' }],
      ['agent_thinking', { text: 'ab' }],
      ['agent_thinking', { text: 'cd' }],
    ]);
    const stored = JSON.parse(JSON.stringify(fold(events.slice(0, 2)))) as RunSnapshot;
    delete stored.sizeBytes;
    const resumed = foldRunEvent(stored, events[2]!);
    const straight = fold(events);
    expect({ ...resumed, sizeBytes: 0 }).toEqual({ ...straight, sizeBytes: 0 });
    expect(resumed.sizeBytes).toBeGreaterThanOrEqual(size(resumed));
    expect(measureRunSnapshot(resumed)).toBeGreaterThanOrEqual(size(resumed));
  });

  it('refuses a cap below its minimum', () => {
    const [start] = records([['agent_started', { agent: 'a' }]]);
    expect(() =>
      foldRunEvent(undefined, start!, { maxBytes: MIN_RUN_SNAPSHOT_MAX_BYTES - 1 }),
    ).toThrow(RangeError);
  });

  it('counts JSON string bytes as JSON.stringify writes them', () => {
    for (const text of ['', 'abc', 'é日', '😀', '"\\\n\t\u0001', '\ud800x', 'x\udc00']) {
      expect(jsonStringBytes(text)).toBe(utf8ByteLength(JSON.stringify(text)) - 2);
    }
  });
});

describe('foldRunEvent: the size cap', () => {
  it(`keeps a run of 5,000 deltas under the cap, with the end of its text and its tool calls`, () => {
    const maxBytes = MIN_RUN_SNAPSHOT_MAX_BYTES;
    const steps: [string, JsonValue][] = [['agent_started', { agent: 'a' }]];
    let full = '';
    for (let i = 0; i < 5_000; i++) {
      const text = `δ${i} `;
      full += text;
      steps.push(['agent_thinking', { text }]);
      if (i === 2_500) steps.push(['tool_executing', { toolCallId: 'c1', tool: 't', args: { i } }]);
      if (i === 2_600) steps.push(['tool_completed', { toolCallId: 'c1', tool: 't', result: 'r' }]);
    }
    steps.push(['agent_text', { text: 'The answer.' }]);
    steps.push(['agent_completed', { status: 'succeeded' }]);
    let run: RunSnapshot | undefined;
    for (const e of records(steps)) {
      run = foldRunEvent(run, e, { maxBytes });
      expect(size(run)).toBeLessThanOrEqual(run.sizeBytes!);
      expect(run.sizeBytes!).toBeLessThanOrEqual(maxBytes);
    }
    expect(run!.truncated).toBe(true);
    expect(run!.parts.map((p) => (p.kind === 'tool' ? p.toolCallId : p.id))).toEqual([
      'r2',
      'c1',
      `r${2_501 + 3}`,
      `r${2_601 + 4}`,
      `m${steps.length - 1}`,
    ]);
    const reasoning = run!.parts
      .filter((p) => p.kind === 'reasoning')
      .map((p) => p.text)
      .join('');
    expect(full.endsWith(reasoning)).toBe(true);
    expect(reasoning.length).toBeGreaterThan(1_000);
    expect(run!.parts[4]).toMatchObject({ text: 'The answer.' });
    expect(run!.parts[1]).toMatchObject({ status: 'completed', result: 'r', args: { i: 2_500 } });
  });

  it('drops tool payloads, then the oldest parts, when text alone does not make room', () => {
    const maxBytes = MIN_RUN_SNAPSHOT_MAX_BYTES;
    const big = 'x'.repeat(3_000);
    const steps: [string, JsonValue][] = [['agent_started', { agent: 'a' }]];
    for (let i = 0; i < 40; i++) {
      steps.push(['tool_executing', { toolCallId: `c${i}`, tool: 't', args: big }]);
      steps.push(['tool_completed', { toolCallId: `c${i}`, tool: 't', result: big }]);
    }
    const run = fold(records(steps), maxBytes);
    expect(size(run)).toBeLessThanOrEqual(maxBytes);
    expect(run.truncated).toBe(true);
    const ids = run.parts.map((p) => (p.kind === 'tool' ? p.toolCallId : ''));
    expect(ids.at(-1)).toBe('c39');
    expect(run.parts.at(-1)).toMatchObject({ status: 'completed', result: big });
    expect(run.parts[0]).toMatchObject({ args: null });
    expect(run.parts[0]).not.toHaveProperty('result');

    const many: [string, JsonValue][] = [['agent_started', { agent: 'a' }]];
    for (let i = 0; i < 400; i++)
      many.push(['tool_executing', { toolCallId: `call-${i}`, tool: 'tool', args: null }]);
    const crowded = fold(records(many), maxBytes);
    expect(size(crowded)).toBeLessThanOrEqual(maxBytes);
    const kept = crowded.parts.map((p) => (p.kind === 'tool' ? p.toolCallId : ''));
    expect(kept.length).toBeLessThan(400);
    expect(kept).toEqual(
      Array.from({ length: kept.length }, (_, i) => `call-${400 - kept.length + i}`),
    );
  });
});

/** The run events of a stream, as the fold takes them. */
function runRecords(
  stream: ReturnType<typeof streamArbitrary.generate>['value'],
): RunEventRecord[] {
  return stream.flatMap((entry) =>
    entry.kind === 'event' && entry.event.runId !== undefined ? [recordOf(entry.event)] : [],
  );
}

/** Folds each run's events into `runs` (default cap). */
function foldByRun(
  events: RunEventRecord[],
  runs: Map<string, RunSnapshot>,
): Map<string, RunSnapshot> {
  for (const e of events) runs.set(e.runId, foldRunEvent(runs.get(e.runId), e));
  return runs;
}

describe('foldRunEvent: properties', () => {
  it('folding the merged frames gives the snapshot of the raw deltas', () => {
    fc.assert(
      fc.property(streamArbitrary, fc.integer({ min: 1, max: 30 }), (stream, cap) => {
        const queue = new DeltaCoalescer({ maxMergedBytes: cap });
        for (const entry of stream) {
          if (entry.kind === 'event') queue.push(pendingItemOf(entry.frame, entry.event));
        }
        // Both folds start from the runs' starts (a run without one takes its
        // start time from its first frame, which a merged frame does not carry).
        const starts = records([['agent_started', { agent: 'a' }]], 0);
        const startAll = (): Map<string, RunSnapshot> =>
          new Map(
            ['r1', 'r2'].map((runId) => [runId, foldRunEvent(undefined, { ...starts[0]!, runId })]),
          );
        const merged = startAll();
        for (const frame of queue.takeAll().frames) {
          const parsed = JSON.parse(frame) as EventFrame;
          if (parsed.runId === undefined) continue;
          merged.set(parsed.runId, foldRunFrame(merged.get(parsed.runId), parsed, EPOCH)!);
        }
        const raw = foldByRun(runRecords(stream), startAll());
        expect(merged).toEqual(raw);
      }),
      { numRuns: 300 },
    );
  });

  it('stays under its cap, keeps its size bound honest, and cuts only the oldest text', () => {
    const bigText = fc.string({ unit: 'grapheme', minLength: 200, maxLength: 2_000 });
    const bigStream = fc.array(
      fc.tuple(fc.constantFrom('agent_thinking', 'agent_text', 'tool'), bigText),
      {
        maxLength: 60,
      },
    );
    fc.assert(
      fc.property(bigStream, (steps) => {
        const events = records([
          ['agent_started', { agent: 'a' }],
          ...steps.map(([kind, text], i): [string, JsonValue] =>
            kind === 'tool'
              ? ['tool_executing', { toolCallId: `c${i}`, tool: 't', args: text }]
              : [kind, { text }],
          ),
        ]);
        const whole = fold(events);
        let run: RunSnapshot | undefined;
        for (const e of events) {
          run = foldRunEvent(run, e, { maxBytes: MIN_RUN_SNAPSHOT_MAX_BYTES });
          expect(size(run)).toBeLessThanOrEqual(run.sizeBytes!);
          expect(run.sizeBytes!).toBeLessThanOrEqual(MIN_RUN_SNAPSHOT_MAX_BYTES);
        }
        const key = (p: RunSnapshot['parts'][number]): string =>
          p.kind === 'tool' ? p.toolCallId : p.id;
        if (!run!.truncated) {
          expect(run).toEqual({ ...whole, sizeBytes: run!.sizeBytes });
          return;
        }
        // The parts kept are the latest ones, each text an end of the whole one.
        const wholeKeys = whole.parts.map(key);
        const keptKeys = run!.parts.map(key);
        expect(wholeKeys.slice(wholeKeys.length - keptKeys.length)).toEqual(keptKeys);
        for (const part of run!.parts) {
          const original = whole.parts.find((p) => key(p) === key(part))!;
          if (part.kind !== 'tool' && original.kind !== 'tool') {
            expect(original.text.endsWith(part.text)).toBe(true);
          }
        }
      }),
      { numRuns: 60 },
    );
  });

  it('applyMergedDelta equals folding the deltas one by one', () => {
    const [start, a, b] = records([
      ['agent_started', { agent: 'a' }],
      ['agent_text', { text: 'ab', messageId: 'm' }],
      ['agent_text', { text: 'cd', messageId: 'm' }],
    ]);
    const raw = fold([start!, a!, b!]);
    const merged = applyMergedDelta(
      foldRunEvent(undefined, start!),
      {
        seqFrom: 2,
        seq: 3,
        id: 'ev_3',
        event: 'agent_text',
        runId: 'r1',
        threadId: 't1',
        ts: 1003,
        text: 'abcd',
        messageId: 'm',
      },
      EPOCH,
    );
    expect(merged).toEqual(raw);
    expect(
      foldRunFrame(
        raw,
        { type: 'event', seq: 4, id: 'e', event: 'x', ts: 1, critical: false, data: null },
        EPOCH,
      ),
    ).toBe(raw);
    expect(raw.upToSeq).toBe(3);
  });
});
