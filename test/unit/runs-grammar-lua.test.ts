/**
 * The Lua run grammar (src/runs/run-grammar-lua.ts) against the TypeScript one,
 * on a real redis-server: every verdict, message and state must agree.
 */
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  RUN_MAX_OPEN_TOOL_CALLS,
  RUN_TOOL_CALL_WINDOW,
  checkRunEvent,
  encodeRunGrammarState,
  runGrammarArg,
  type RunGrammarState,
  type RunGrammarVerdict,
} from '../../src/runs/run-grammar.js';
import { RUN_GRAMMAR_LUA } from '../../src/runs/run-grammar-lua.js';
import { RedisServer, redisServerMissing } from '../helpers/redis-server.js';
import {
  completed,
  done,
  exec,
  runStepsArbitrary,
  started,
  type Step,
} from '../helpers/run-steps.js';

/** ARGV: 1 state ('' for none), 2 event, 3 arg. Returns {ok, next|code, open|message}. */
const WRAPPER = `${RUN_GRAMMAR_LUA}
local state = ARGV[1]
if state == '' then state = false end
local ok, a, b = run_grammar_check(state, ARGV[2], ARGV[3])
return {ok, a, b}
`;

/**
 * ARGV: event, arg, event, arg, … Runs them in turn from no state, keeping
 * the state of accepted ones as the publish script would, in one round trip.
 * Returns one {ok, next|code, open|message} per event.
 */
const SEQUENCE = `${RUN_GRAMMAR_LUA}
local state = false
local out = {}
for i = 1, #ARGV, 2 do
  local ok, a, b = run_grammar_check(state, ARGV[i], ARGV[i + 1])
  if ok == 1 then state = a end
  out[#out + 1] = {ok, a, b}
end
return out
`;

describe.skipIf(redisServerMissing)('run grammar in Lua', () => {
  let server: RedisServer;
  let redis: Redis;

  beforeAll(async () => {
    server = await RedisServer.start();
    redis = new Redis(server.url);
  });

  afterAll(async () => {
    redis?.disconnect();
    await server?.dispose();
  });

  async function luaCheck(
    state: string,
    event: string,
    arg: string,
  ): Promise<[number, string, string]> {
    return (await redis.eval(WRAPPER, 0, state, event, arg)) as [number, string, string];
  }

  /**
   * Runs the steps through both, each chaining its own state, and compares
   * each verdict: the Lua state is parsed and compared with the TS state.
   * (An empty sequence is not sent: EVAL needs no ARGV, but the answer is [].)
   */
  async function compare(steps: Step[]): Promise<RunGrammarVerdict[]> {
    const args = steps.flatMap(([event, data]) => [event, runGrammarArg(event, data)]);
    const lua = (await redis.eval(SEQUENCE, 0, ...args)) as [number, string, string][];
    expect(lua).toHaveLength(steps.length);
    let tsState: RunGrammarState | undefined;
    const verdicts: RunGrammarVerdict[] = [];
    for (const [i, [event, data]] of steps.entries()) {
      const verdict = checkRunEvent(tsState, event, data);
      const [ok, a, b] = lua[i]!;
      verdicts.push(verdict);
      if (verdict.ok) {
        expect(ok).toBe(1);
        // Compared as canonical JSON: a deep toEqual of 1024-id lists per step is slow.
        expect(JSON.stringify(JSON.parse(a))).toBe(encodeRunGrammarState(verdict.next));
        expect(b === '' ? undefined : JSON.parse(b)).toEqual(verdict.openToolCalls);
        tsState = verdict.next;
      } else {
        expect([ok, a, b]).toEqual([0, verdict.code, verdict.message]);
      }
    }
    return verdicts;
  }

  it('agrees with the TypeScript grammar on random runs', async () => {
    await fc.assert(
      fc.asyncProperty(runStepsArbitrary, async (steps) => {
        await compare(steps);
      }),
      { numRuns: 300 },
    );
  });

  it('agrees on every rule, the message with more than ten open calls included', async () => {
    const ids = Array.from({ length: 12 }, (_, i) => `c${i}`);
    const verdicts = await compare([
      done('x'),
      started,
      started,
      ...ids.map(exec),
      exec('c1'),
      done('zz'),
      completed('succeeded'),
      ...ids.slice(0, 11).map(done),
      completed('cancelled'),
      ['agent_text', { text: 'late' }],
    ]);
    const codes = verdicts.filter((v) => !v.ok).map((v) => (v.ok ? '' : v.code));
    expect(codes).toEqual([
      'run_not_started',
      'run_already_started',
      'tool_call_duplicate',
      'tool_call_unknown',
      'tool_calls_open',
      'run_finished',
    ]);
  });

  it('agrees past the duplicate window and at the open-call limit', async () => {
    const steps: Step[] = [started];
    for (let i = 0; i < RUN_TOOL_CALL_WINDOW + 3; i++) steps.push(exec(`w${i}`), done(`w${i}`));
    steps.push(exec('w0'), exec('w5'), done('w0'));
    for (let i = 0; i < RUN_MAX_OPEN_TOOL_CALLS; i++) steps.push(exec(`o${i}`));
    steps.push(exec('one-too-many'), completed('failed'));
    const verdicts = await compare(steps);
    expect(verdicts.filter((v) => !v.ok).map((v) => (v.ok ? '' : v.code))).toEqual([
      'tool_call_duplicate',
      'tool_calls_limit',
    ]);
    expect(verdicts.at(-1)).toMatchObject({ ok: true });
  });

  it('reads a state the TypeScript side wrote', async () => {
    const state: RunGrammarState = { finished: false, open: ['a/b'], used: ['a/b', 'é'] };
    const [ok, next] = await luaCheck(encodeRunGrammarState(state), 'tool_completed', 'a/b');
    expect(ok).toBe(1);
    expect(JSON.parse(next)).toEqual({ finished: false, open: [], used: ['a/b', 'é'] });
    // A delta is checked on the state's prefix alone: the TS encoding must keep `finished` first.
    const finished = encodeRunGrammarState({ finished: true, open: [], used: [] });
    expect(await luaCheck(finished, 'agent_text', '')).toEqual([
      0,
      'run_finished',
      'the run already ended with agent_completed; agent_text cannot follow it',
    ]);
    expect(await luaCheck(encodeRunGrammarState(state), 'agent_text', '')).toEqual([
      1,
      encodeRunGrammarState(state),
      '',
    ]);
  });
});
