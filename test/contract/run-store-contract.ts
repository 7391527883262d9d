/**
 * The run cases of the broker contract (stream contract point 7 and
 * `run-store.ts`), run by `describeBrokerContract` on every engine: the run
 * grammar checked in `publish` (one case per rule: refused, nothing stored or
 * delivered, no seq used), idempotent repeats, the `warn` and `off` modes,
 * and the snapshots (the fold of the stored events, so every engine answers
 * the same snapshot for the same events), with their bounds: TTL apart from
 * the history, runs per user, the size cap.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Broker } from '../../src/broker/broker.js';
import { RunGrammarError } from '../../src/errors.js';
import {
  encodeEvent,
  encodeEventFrame,
  type EncodedEvent,
} from '../../src/protocol/event-frame.js';
import { validateEventInput } from '../../src/protocol/event-input.js';
import type { EventFrame } from '../../src/protocol/frames.js';
import { foldRunFrame } from '../../src/runs/run-snapshot.js';
import type { RunSnapshot } from '../../src/runs/run-types.js';
import type { RecordingHandlers } from '../helpers/recording-handlers.js';
import { completed, done, exec, started, type Step } from '../helpers/run-steps.js';
import { waitFor } from '../helpers/wait-for.js';

export interface RunStoreFactoryOptions {
  historySize: number;
  historyTtlMs: number;
  runTtlMs?: number;
  runSnapshotMaxBytes?: number;
  maxRunsPerUser?: number;
}

export type OpenBroker = (
  options?: Partial<RunStoreFactoryOptions>,
) => Promise<{ broker: Broker; handlers: RecordingHandlers }>;

const RUN = randomBytes(4).toString('hex');
let userCounter = 0;
function newUser(label: string): string {
  return `${label}-${RUN}-${++userCounter}`;
}

function runEvent(runId: string, [event, data]: Step, id?: string): EncodedEvent {
  const result = validateEventInput(
    { event, data, runId, threadId: 'th-1', ...(id !== undefined ? { id } : {}) },
    256 * 1024,
  );
  if (!result.ok) throw new Error(`test event is invalid: ${result.failure.message}`);
  return encodeEvent(result.value);
}

const thinking = (text: string): Step => ['agent_thinking', { text }];
const answer = (text: string, messageId?: string): Step => [
  'agent_text',
  messageId === undefined ? { text } : { text, messageId },
];

/** The run folded from the engine's own history: what its snapshot must equal. */
async function foldedFromHistory(
  broker: Broker,
  userId: string,
  runId: string,
  maxBytes?: number,
): Promise<RunSnapshot | undefined> {
  const read = await broker.readHistory(userId, { kind: 'acked' });
  let run: RunSnapshot | undefined;
  for (const event of read.events) {
    const frame = JSON.parse(encodeEventFrame(event)) as EventFrame;
    if (frame.runId === runId) {
      run = foldRunFrame(run, frame, read.epoch, maxBytes === undefined ? {} : { maxBytes });
    }
  }
  if (run !== undefined) delete run.sizeBytes;
  return run;
}

async function expectRefused(
  promise: Promise<unknown>,
  code: RunGrammarError['code'],
): Promise<RunGrammarError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RunGrammarError);
  expect((error as RunGrammarError).code).toBe(code);
  expect((error as RunGrammarError).status).toBe(409);
  return error as RunGrammarError;
}

/** Steps that lead up to each rule's violation, and the violating step. */
const RULES: [code: RunGrammarError['code'], before: Step[], violation: Step][] = [
  ['run_not_started', [], thinking('too early')],
  ['run_already_started', [started], started],
  ['run_finished', [started, completed('succeeded')], thinking('late')],
  ['tool_call_duplicate', [started, exec('c1'), done('c1')], exec('c1')],
  ['tool_call_unknown', [started, exec('c1')], done('c2')],
  ['tool_calls_open', [started, exec('c1'), exec('c2')], completed('succeeded')],
];

export function describeRunStoreContract(open: OpenBroker): void {
  describe('run grammar at publish (contract 7)', () => {
    for (const [code, before, violation] of RULES) {
      it(`refuses ${violation[0]} with ${code}: nothing stored or delivered, no seq used`, async () => {
        const { broker, handlers } = await open();
        const user = newUser(code);
        await broker.subscribe(user);
        for (const step of before) await broker.publish(user, runEvent('r1', step));
        await waitFor(() => handlers.seqsOf(user).length === before.length, {
          what: 'the events before the violation',
        });
        const head = (await broker.readHistory(user, { kind: 'acked' })).headSeq;
        const runBefore = await broker.readRun(user, 'r1');

        const error = await expectRefused(broker.publish(user, runEvent('r1', violation)), code);
        if (code === 'tool_calls_open') expect(error.message).toMatch(/c1, c2$/);

        const read = await broker.readHistory(user, { kind: 'acked' });
        expect(read.headSeq).toBe(head);
        expect(await broker.readRun(user, 'r1')).toEqual(runBefore);
        // The next event of another run gets the very next seq, and is the
        // next event delivered: the refused one used no seq and went nowhere.
        const next = await broker.publish(user, runEvent('r2', started));
        expect(next.seq).toBe(head + 1);
        await waitFor(() => handlers.seqsOf(user).length === before.length + 1, {
          what: 'the next event',
        });
        expect(handlers.seqsOf(user)).toEqual(range(1, head + 1));
      });
    }

    it('accepts a failed completion with open tool calls and names them', async () => {
      const { broker } = await open();
      const user = newUser('failed');
      for (const step of [started, exec('a'), exec('b'), done('a')]) {
        await broker.publish(user, runEvent('r1', step));
      }
      const outcome = await broker.publish(user, runEvent('r1', completed('failed')));
      expect(outcome).toMatchObject({ seq: 5, duplicate: false, openToolCalls: ['b'] });
      expect(await broker.readRun(user, 'r1')).toMatchObject({ status: 'failed', upToSeq: 5 });
      const clean = await broker.publish(user, runEvent('r2', started));
      expect(clean.openToolCalls).toBeUndefined();
    });

    it('answers an idempotent repeat with the first outcome, never as a violation', async () => {
      const { broker } = await open();
      const user = newUser('repeat');
      await broker.publish(user, runEvent('r1', started, 'start-1'));
      const end = await broker.publish(user, runEvent('r1', completed('succeeded'), 'end-1'));
      // Both would break the grammar now (a second start, a second end), but
      // they repeat ids already published.
      const again = await broker.publish(user, runEvent('r1', started, 'start-1'));
      expect(again).toMatchObject({ seq: 1, duplicate: true });
      const endAgain = await broker.publish(user, runEvent('r1', completed('succeeded'), 'end-1'));
      expect(endAgain).toMatchObject({ seq: end.seq, duplicate: true });
      await expectRefused(
        broker.publish(user, runEvent('r1', completed('succeeded'), 'end-2')),
        'run_finished',
      );
      expect((await broker.readHistory(user, { kind: 'acked' })).headSeq).toBe(2);
    });

    it('warn publishes a violation and reports it; the grammar state stays as it was', async () => {
      const { broker } = await open();
      const user = newUser('warn');
      await broker.publish(user, runEvent('r1', started));
      const bad = await broker.publish(user, runEvent('r1', done('ghost')), {
        runGrammar: 'warn',
      });
      expect(bad).toMatchObject({
        seq: 2,
        runGrammarViolation: { code: 'tool_call_unknown', message: expect.stringMatching(/ghost/) },
      });
      // The state did not take the refused event: c1 is still a new tool call.
      const ok = await broker.publish(user, runEvent('r1', exec('c1')), { runGrammar: 'warn' });
      expect(ok.runGrammarViolation).toBeUndefined();
      const off = await broker.publish(user, runEvent('r1', started), { runGrammar: 'off' });
      expect(off).toMatchObject({ seq: 4, duplicate: false });
      expect(off.runGrammarViolation).toBeUndefined();
      // Strict again: the state is the one before the unchecked events.
      await expectRefused(broker.publish(user, runEvent('r1', exec('c1'))), 'tool_call_duplicate');
      // Every published event is folded, checked or not.
      expect((await broker.readRun(user, 'r1'))?.upToSeq).toBe(4);
    });

    it('keeps two users and two runs apart', async () => {
      const { broker } = await open();
      const [a, b] = [newUser('apart'), newUser('apart')];
      await broker.publish(a, runEvent('r1', started));
      await broker.publish(a, runEvent('r1', completed('succeeded')));
      // The same run id for another user is another run.
      expect((await broker.publish(b, runEvent('r1', started))).seq).toBe(1);
      expect((await broker.publish(a, runEvent('r2', started))).seq).toBe(3);
      expect(await broker.readRun(b, 'r2')).toBeNull();
      expect((await broker.readRun(b, 'r1'))?.status).toBe('running');
      expect((await broker.readRun(a, 'r1'))?.status).toBe('succeeded');
    });
  });

  describe('run snapshots (run store)', () => {
    it('answers the fold of the stored events of the run, and null for an unknown run', async () => {
      const { broker } = await open();
      const user = newUser('fold');
      const steps: Step[] = [
        started,
        thinking('Let me '),
        thinking('look: "ü" \\ 😀'),
        exec('c1'),
        ['tool_completed', { toolCallId: 'c1', tool: 't', result: { rows: [1, 2] } }],
        answer('It is ', 'm1'),
        answer('sunny.', 'm1'),
        answer('(done)'),
        ['custom.note', { anything: true }],
        ['agent_completed', { status: 'succeeded', result: { ok: 1 }, usage: { tokens: 9 } }],
      ];
      for (const step of steps) await broker.publish(user, runEvent('r1', step));
      await broker.publish(user, runEvent('other', started));
      const run = await broker.readRun(user, 'r1');
      expect(run).toEqual(await foldedFromHistory(broker, user, 'r1'));
      expect(run).toMatchObject({
        runId: 'r1',
        threadId: 'th-1',
        agent: 'a',
        status: 'succeeded',
        startedSeq: 1,
        upToSeq: 10,
        completed: { status: 'succeeded', result: { ok: 1 }, usage: { tokens: 9 } },
      });
      expect(run?.parts.map((p) => (p.kind === 'tool' ? p.toolCallId : p.id))).toEqual([
        'r2',
        'c1',
        'm1',
        'm8',
      ]);
      expect(run?.sizeBytes).toBeUndefined();
      expect(await broker.readRun(user, 'nope')).toBeNull();
      expect(await broker.readRun(newUser('nobody'), 'r1')).toBeNull();
    });

    it('folds a long run exactly (600 deltas, compacted on Redis) and keeps folding after it', async () => {
      const { broker } = await open();
      const user = newUser('long');
      await broker.publish(user, runEvent('r1', started));
      let text = '';
      for (let i = 0; i < 600; i++) {
        const delta = `d${i} `;
        text += delta;
        await broker.publish(user, runEvent('r1', thinking(delta)));
      }
      await broker.publish(user, runEvent('r1', exec('c1')));
      const run = await broker.readRun(user, 'r1');
      expect(run).toEqual(await foldedFromHistory(broker, user, 'r1'));
      expect(run?.parts[0]).toMatchObject({ kind: 'reasoning', text, open: false });
      expect(run?.upToSeq).toBe(602);
    });

    it('lists the user runs newest first, at most limit', async () => {
      const { broker } = await open();
      const user = newUser('list');
      for (const runId of ['a', 'b', 'c']) await broker.publish(user, runEvent(runId, started));
      // An update of an older run does not make it newer: the order is by start.
      await broker.publish(user, runEvent('a', thinking('later')));
      expect((await broker.listRuns(user, 10)).map((r) => r.runId)).toEqual(['c', 'b', 'a']);
      expect((await broker.listRuns(user, 2)).map((r) => r.runId)).toEqual(['c', 'b']);
      expect(await broker.listRuns(newUser('none'), 10)).toEqual([]);
      expect((await broker.listRuns(user, 1))[0]).toEqual(await broker.readRun(user, 'c'));
    });

    it('outlives the history: a finished run answers after its events expired', async () => {
      const { broker } = await open({ historyTtlMs: 200 });
      const user = newUser('outlive');
      for (const step of [started, thinking('kept'), completed('succeeded')]) {
        await broker.publish(user, runEvent('r1', step));
      }
      const folded = await foldedFromHistory(broker, user, 'r1');
      await waitFor(
        async () => (await broker.readHistory(user, { kind: 'acked' })).events.length === 0,
        { what: 'the history to expire', timeoutMs: 5000 },
      );
      expect(await broker.readRun(user, 'r1')).toEqual(folded);
      expect((await broker.listRuns(user, 5)).map((r) => r.runId)).toEqual(['r1']);
    });

    it('expires a run runTtlMs after its last event, with its grammar state', async () => {
      const { broker } = await open({ runTtlMs: 300 });
      const user = newUser('ttl');
      await broker.publish(user, runEvent('r1', started));
      expect(await broker.readRun(user, 'r1')).not.toBeNull();
      await waitFor(async () => (await broker.readRun(user, 'r1')) === null, {
        what: 'the run to expire',
        timeoutMs: 5000,
      });
      expect(await broker.listRuns(user, 5)).toEqual([]);
      // Its state went with it: the run's next event is a first event again.
      await expectRefused(broker.publish(user, runEvent('r1', thinking('x'))), 'run_not_started');
    });

    it('keeps maxRunsPerUser runs: a new run drops the least recently updated one', async () => {
      const { broker } = await open({ maxRunsPerUser: 3 });
      const user = newUser('bound');
      for (const runId of ['a', 'b', 'c']) await broker.publish(user, runEvent(runId, started));
      await broker.publish(user, runEvent('a', thinking('a is fresh'))); // b is now the stalest
      await broker.publish(user, runEvent('d', started));
      expect((await broker.listRuns(user, 10)).map((r) => r.runId)).toEqual(['d', 'c', 'a']);
      expect(await broker.readRun(user, 'b')).toBeNull();
      await expectRefused(broker.publish(user, runEvent('b', thinking('x'))), 'run_not_started');
      // Another user's runs are not counted against this one.
      const other = newUser('bound');
      await broker.publish(other, runEvent('z', started));
      expect(await broker.listRuns(user, 10)).toHaveLength(3);
    });

    it('cuts a snapshot past runSnapshotMaxBytes: truncated, within the cap, the end of the text kept', async () => {
      const maxBytes = 16 * 1024;
      const { broker } = await open({ runSnapshotMaxBytes: maxBytes });
      const user = newUser('cap');
      await broker.publish(user, runEvent('r1', started));
      let text = '';
      for (let i = 0; i < 40; i++) {
        const delta = `${String(i).padStart(3, '0')}${'x'.repeat(997)}`;
        text += delta;
        await broker.publish(user, runEvent('r1', thinking(delta)));
      }
      const run = await broker.readRun(user, 'r1');
      expect(run?.truncated).toBe(true);
      expect(Buffer.byteLength(JSON.stringify(run), 'utf8')).toBeLessThanOrEqual(maxBytes);
      const part = run?.parts[0];
      expect(part?.kind).toBe('reasoning');
      expect(text.endsWith((part as { text: string }).text)).toBe(true);
      expect(run).toEqual(await foldedFromHistory(broker, user, 'r1', maxBytes));
    });
  });
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
