import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/protocol/index.js';
import {
  RUN_GRAMMAR_CODES,
  RUN_MAX_OPEN_TOOL_CALLS,
  RUN_TOOL_CALL_WINDOW,
  checkRunEvent,
  decodeRunGrammarState,
  encodeRunGrammarState,
  runGrammarArg,
  type RunGrammarState,
  type RunGrammarVerdict,
} from '../../src/runs/run-grammar.js';
import {
  completed,
  done,
  exec,
  started,
  runStepsArbitrary,
  type Step,
} from '../helpers/run-steps.js';

/** Feeds the events in order, keeping the state of accepted ones; returns every verdict. */
function run(steps: Step[], initial?: RunGrammarState): RunGrammarVerdict[] {
  let state = initial;
  return steps.map(([event, data]) => {
    const verdict = checkRunEvent(state, event, data);
    if (verdict.ok) state = verdict.next;
    return verdict;
  });
}

function last(verdicts: RunGrammarVerdict[]): RunGrammarVerdict {
  return verdicts[verdicts.length - 1]!;
}

function codeOf(verdict: RunGrammarVerdict): string {
  return verdict.ok ? 'ok' : verdict.code;
}

describe('run grammar: one rule at a time', () => {
  it('accepts a well-formed run', () => {
    const verdicts = run([
      started,
      ['agent_thinking', { text: 'hm' }],
      exec('c1'),
      ['agent_text', { text: 'x', messageId: 'm' }],
      done('c1'),
      ['custom.token', 'anything'],
      completed('succeeded'),
    ]);
    expect(verdicts.map(codeOf)).toEqual(Array(7).fill('ok'));
    expect(last(verdicts)).toEqual({
      ok: true,
      next: { finished: true, open: [], used: [] },
    });
  });

  it('run_not_started: the first event must be agent_started', () => {
    const verdict = checkRunEvent(undefined, 'agent_thinking', { text: 'x' });
    expect(verdict).toEqual({
      ok: false,
      code: 'run_not_started',
      message: 'the first event of a run must be agent_started, not agent_thinking',
    });
  });

  it('run_already_started: a second agent_started', () => {
    expect(codeOf(last(run([started, started])))).toBe('run_already_started');
  });

  it('run_finished: anything after agent_completed, whatever its status', () => {
    for (const status of ['succeeded', 'failed', 'cancelled']) {
      for (const next of [started, exec('c'), ['agent_thinking', { text: 'x' }] as Step]) {
        const verdict = last(run([started, completed(status), next]));
        expect(codeOf(verdict)).toBe('run_finished');
      }
    }
    expect(last(run([started, completed('failed'), completed('succeeded')]))).toMatchObject({
      ok: false,
      message: 'the run already ended with agent_completed; agent_completed cannot follow it',
    });
  });

  it('tool_call_duplicate: a toolCallId already used, open or completed', () => {
    expect(codeOf(last(run([started, exec('c'), exec('c')])))).toBe('tool_call_duplicate');
    const verdict = last(run([started, exec('c'), done('c'), exec('c')]));
    expect(verdict).toEqual({
      ok: false,
      code: 'tool_call_duplicate',
      message: 'toolCallId "c" was already used in this run',
    });
  });

  it('tool_call_unknown: tool_completed without an open tool_executing', () => {
    expect(last(run([started, done('c')]))).toEqual({
      ok: false,
      code: 'tool_call_unknown',
      message: 'tool_completed for toolCallId "c" without an open tool_executing',
    });
    expect(codeOf(last(run([started, exec('c'), done('c'), done('c')])))).toBe('tool_call_unknown');
  });

  it('tool_calls_open: succeeded with open calls is refused and names them', () => {
    const verdict = last(run([started, exec('a'), exec('b'), done('a'), completed('succeeded')]));
    expect(verdict).toEqual({
      ok: false,
      code: 'tool_calls_open',
      message: 'agent_completed succeeded while tool calls are open: b',
    });
  });

  it('names at most ten open calls, then how many more', () => {
    const ids = Array.from({ length: 13 }, (_, i) => `c${i}`);
    const verdict = last(run([started, ...ids.map(exec), completed('succeeded')]));
    expect(verdict).toMatchObject({
      code: 'tool_calls_open',
      message: `agent_completed succeeded while tool calls are open: ${ids.slice(0, 10).join(', ')}, and 3 more`,
    });
  });

  it('failed and cancelled completions are accepted and list the open calls', () => {
    for (const status of ['failed', 'cancelled']) {
      const verdict = last(run([started, exec('a'), exec('b'), completed(status)]));
      expect(verdict).toEqual({
        ok: true,
        next: { finished: true, open: [], used: [] },
        openToolCalls: ['a', 'b'],
      });
    }
    expect(last(run([started, completed('failed')]))).not.toHaveProperty('openToolCalls');
  });

  it('every code is a 409 of the error table', () => {
    for (const code of RUN_GRAMMAR_CODES) expect(ERROR_CODES[code].status).toBe(409);
    expect(ERROR_CODES.tool_calls_limit.meaning).toContain(String(RUN_MAX_OPEN_TOOL_CALLS));
  });

  it('leaves the state it was given untouched and returns it when nothing changes', () => {
    const state = Object.freeze({
      finished: false,
      open: Object.freeze(['a']) as string[],
      used: Object.freeze(['a']) as string[],
    });
    expect(checkRunEvent(state, 'agent_thinking', { text: 'x' })).toEqual({
      ok: true,
      next: state,
    });
    const after = checkRunEvent(state, 'tool_completed', { toolCallId: 'a', tool: 't' });
    expect(after).toEqual({ ok: true, next: { finished: false, open: [], used: ['a'] } });
    expect(state.open).toEqual(['a']);
  });

  it('reads only toolCallId and status out of data', () => {
    expect(runGrammarArg('tool_executing', { toolCallId: 'c', tool: 't', args: null })).toBe('c');
    expect(runGrammarArg('tool_completed', { toolCallId: 'd', tool: 't' })).toBe('d');
    expect(runGrammarArg('agent_completed', { status: 'failed' })).toBe('failed');
    expect(runGrammarArg('agent_thinking', { text: 'x' })).toBe('');
    expect(runGrammarArg('tool_executing', 'not an object')).toBe('');
  });
});

describe('run grammar: bounds', () => {
  it(`remembers the last ${RUN_TOOL_CALL_WINDOW} tool call ids and no more`, () => {
    const count = RUN_TOOL_CALL_WINDOW + 5;
    const steps: Step[] = [started];
    for (let i = 0; i < count; i++) steps.push(exec(`c${i}`), done(`c${i}`));
    const verdicts = run(steps);
    expect(verdicts.every((v) => v.ok)).toBe(true);
    const state = (last(verdicts) as { next: RunGrammarState }).next;
    expect(state.used).toHaveLength(RUN_TOOL_CALL_WINDOW);
    expect(state.used[0]).toBe('c5');
    // The oldest ids left the window: reusing one is accepted, a newer one is not.
    expect(checkRunEvent(state, ...exec('c4')).ok).toBe(true);
    expect(codeOf(checkRunEvent(state, ...exec('c5')))).toBe('tool_call_duplicate');
  });

  it(`refuses a tool call past ${RUN_MAX_OPEN_TOOL_CALLS} open ones, and takes it once one completes`, () => {
    const steps: Step[] = [started];
    for (let i = 0; i < RUN_MAX_OPEN_TOOL_CALLS; i++) steps.push(exec(`c${i}`));
    const verdicts = run(steps);
    expect(verdicts.every((v) => v.ok)).toBe(true);
    let state = (last(verdicts) as { next: RunGrammarState }).next;
    expect(state.open).toHaveLength(RUN_MAX_OPEN_TOOL_CALLS);
    expect(checkRunEvent(state, ...exec('extra'))).toEqual({
      ok: false,
      code: 'tool_calls_limit',
      message: `${RUN_MAX_OPEN_TOOL_CALLS} tool calls of this run are open; complete one before starting another`,
    });
    // The oldest open call already left the duplicate window but is still open:
    // it stays a duplicate and can still complete.
    const more = run([...Array.from({ length: 10 }, (_, i) => done(`c${i + 1}`))], state);
    state = (last(more) as { next: RunGrammarState }).next;
    expect(codeOf(checkRunEvent(state, ...exec('c0')))).toBe('tool_call_duplicate');
    expect(checkRunEvent(state, ...exec('extra')).ok).toBe(true);
  });
});

describe('run grammar: properties', () => {
  it('accepts nothing after an accepted agent_completed', () => {
    fc.assert(
      fc.property(runStepsArbitrary, (steps) => {
        const verdicts = run(steps);
        const end = verdicts.findIndex((v, i) => v.ok && steps[i]![0] === 'agent_completed');
        if (end < 0) return;
        for (const verdict of verdicts.slice(end + 1)) expect(codeOf(verdict)).toBe('run_finished');
      }),
    );
  });

  it('what it accepts is a well-formed run', () => {
    fc.assert(
      fc.property(runStepsArbitrary, (steps) => {
        const verdicts = run(steps);
        const accepted = steps.filter((_, i) => verdicts[i]!.ok);
        if (accepted.length === 0) return;
        expect(accepted[0]![0]).toBe('agent_started');
        expect(accepted.filter(([e]) => e === 'agent_started')).toHaveLength(1);
        const open = new Set<string>();
        const used = new Set<string>();
        for (const [event, data] of accepted) {
          const id = runGrammarArg(event, data);
          if (event === 'tool_executing') {
            expect(used.has(id)).toBe(false);
            open.add(id);
            used.add(id);
          } else if (event === 'tool_completed') {
            expect(open.delete(id)).toBe(true);
          } else if (event === 'agent_completed' && id === 'succeeded') {
            expect([...open]).toEqual([]);
          }
        }
      }),
    );
  });

  it('the state survives its JSON form', () => {
    fc.assert(
      fc.property(runStepsArbitrary, (steps) => {
        for (const verdict of run(steps)) {
          if (!verdict.ok) continue;
          expect(decodeRunGrammarState(encodeRunGrammarState(verdict.next))).toEqual(verdict.next);
        }
      }),
    );
    expect(() => decodeRunGrammarState('{"finished":1}')).toThrow('not a run grammar state');
  });
});
