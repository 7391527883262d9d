/**
 * `POST /v1/ag-ui/runs` as a stock `@ag-ui/client` HttpAgent consumes it: a
 * real gateway on 127.0.0.1 (its HTTP API on the same server), runs published
 * through the gateway, the agent's real fetch, SSE parser, schema checks,
 * verifier and reducer. Cuts are real: the agent's fetch aborts the request
 * (the TCP connection closes) right after a chosen event, and the app resumes
 * with `Last-Event-ID`, as docs/ag-ui.md tells it to.
 */
import { HttpAgent } from '@ag-ui/client';
import type { BaseEvent, Message, RunErrorEvent } from '@ag-ui/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareAguiPositions, type AguiPosition } from '../../src/agui/agui-cursor.js';
import { parseLastEventId } from '../../src/agui/sse-encoding.js';
import type { JsonValue } from '../../src/protocol/frames.js';
import {
  AGUI_THREAD_ID,
  cuttingFetch,
  startAguiGateway,
  type AguiGateway,
} from '../helpers/agui-gateway.js';
import { watchConsoleNoise } from '../helpers/console-noise.js';
import { waitFor } from '../helpers/wait-for.js';

const ARGS = { query: 'weather in Paris', limit: 3 };
const RESULT = { answer: 'It is sunny in Paris today.' };
type Step = readonly [string, JsonValue];

const STARTED: Step = ['agent_started', { agent: 'demo', input: { question: 'Weather?' } }];
/** The demo-like run after its agent_started. */
const REST: readonly Step[] = [
  ['agent_thinking', { text: 'The user wants ' }],
  ['agent_thinking', { text: 'the weather; ' }],
  ['agent_thinking', { text: 'I will search.' }],
  ['tool_executing', { toolCallId: 'call-1', tool: 'search', args: ARGS }],
  ['tool_completed', { toolCallId: 'call-1', tool: 'search', result: { hits: ['sunny'] } }],
  ['agent_text', { text: 'It is sunny ' }],
  ['agent_text', { text: 'in Paris ' }],
  ['agent_text', { text: 'today.' }],
  ['agent_completed', { status: 'succeeded', result: RESULT }],
];

/** What every path must end with (ids derive from the run id). */
function expectedMessages(runId: string): unknown[] {
  return [
    { id: `${runId}:r2`, role: 'reasoning', content: 'The user wants the weather; I will search.' },
    {
      id: `${runId}:call:call-1`,
      role: 'assistant',
      toolCalls: [
        {
          id: 'call-1',
          type: 'function',
          function: { name: 'search', arguments: JSON.stringify(ARGS) },
        },
      ],
    },
    {
      id: `${runId}:result:call-1`,
      role: 'tool',
      toolCallId: 'call-1',
      content: JSON.stringify({ hits: ['sunny'] }),
    },
    { id: `${runId}:m7`, role: 'assistant', content: 'It is sunny in Paris today.' },
  ];
}

/** Messages without the `metadata` the reducer folds in (it names positions). */
function withoutMetadata(messages: readonly Message[]): unknown[] {
  return JSON.parse(
    JSON.stringify(messages, (key, value: unknown) => (key === 'metadata' ? undefined : value)),
  ) as unknown[];
}

function cursorOf(event: BaseEvent): string | undefined {
  return (event.metadata as { agentsocket?: { cursor?: string } } | undefined)?.agentsocket?.cursor;
}

/** No coalescing window: each event goes out as it comes, so every cut point is reachable. */
let exact: AguiGateway;
/** The default 40 ms window. */
let coalescing: AguiGateway;
const { expectNoConsoleNoise } = watchConsoleNoise();
let counter = 0;

/** A run of its own user, so its seqs (and so its message ids) start at 1. */
interface TestRun {
  gateway: AguiGateway;
  userId: string;
  runId: string;
  token: string;
}

async function newRun(gateway: AguiGateway = exact): Promise<TestRun> {
  counter++;
  const userId = `user-${counter}`;
  return { gateway, userId, runId: `run-${counter}`, token: await gateway.token(userId) };
}

beforeAll(async () => {
  exact = await startAguiGateway({ agui: { coalesceWindowMs: 0 } });
  coalescing = await startAguiGateway();
});
afterAll(async () => {
  await exact.close();
  await coalescing.close();
});

interface AgentOptions {
  cutAfter?: (event: BaseEvent) => boolean;
  raw?: string[];
  initialMessages?: Message[];
}

/** A stock agent on the route, with the run's user token; the cut can be changed later. */
function newAgent(
  run: TestRun,
  options: AgentOptions = {},
): { agent: HttpAgent; setCut: (cut: (event: BaseEvent) => boolean) => void } {
  let cut = options.cutAfter ?? (() => false);
  const agent = new HttpAgent({
    url: run.gateway.runsUrl,
    threadId: AGUI_THREAD_ID,
    headers: { Authorization: `Bearer ${run.token}` },
    initialMessages: options.initialMessages ?? [],
    fetch: cuttingFetch((event) => cut(event), options.raw),
  });
  return { agent, setCut: (next) => (cut = next) };
}

type Outcome = Awaited<ReturnType<HttpAgent['runAgent']>>;

/**
 * Starts the run, attaches the agents (snapshot mode, live from
 * agent_started), publishes the rest once each saw RUN_STARTED, and resolves
 * with their outcomes and the last cursor each received.
 */
async function attachThenPublish(
  run: TestRun,
  agents: HttpAgent[],
  rest: readonly Step[] = REST,
): Promise<{ outcomes: Outcome[]; cursors: string[] }> {
  await run.gateway.publishRun(run.userId, run.runId, [STARTED]);
  const cursors: string[] = agents.map(() => '');
  let started = 0;
  const running = agents.map((agent, index) =>
    agent.runAgent(
      { runId: run.runId },
      {
        onEvent: ({ event }) => {
          cursors[index] = cursorOf(event) ?? cursors[index] ?? '';
        },
        onRunStartedEvent: () => {
          started++;
        },
      },
    ),
  );
  await waitFor(() => started === agents.length, { what: 'every agent saw RUN_STARTED' });
  await run.gateway.publishRun(run.userId, run.runId, rest);
  const outcomes = await Promise.all(running);
  return { outcomes, cursors };
}

describe('a stock HttpAgent on POST /v1/ag-ui/runs', () => {
  it('resolves a demo-like run with its result and messages, without a warning', async () => {
    const run = await newRun();
    const { agent } = newAgent(run);
    const { outcomes } = await attachThenPublish(run, [agent]);
    expect(outcomes[0]?.result).toEqual(RESULT);
    expect(withoutMetadata(agent.messages)).toEqual(expectedMessages(run.runId));
    const call = agent.messages[1];
    expect(
      call?.role === 'assistant' && JSON.parse(call.toolCalls?.[0]?.function.arguments ?? ''),
    ).toEqual(ARGS);
    expectNoConsoleNoise();
  });

  it('fires onRunErrorEvent once for a failed run', async () => {
    const run = await newRun();
    const { agent } = newAgent(run);
    const errors: RunErrorEvent[] = [];
    agent.subscribe({ onRunErrorEvent: ({ event }) => void errors.push(event) });
    const { outcomes } = await attachThenPublish(
      run,
      [agent],
      [
        ['agent_text', { text: 'Let me try' }],
        ['tool_executing', { toolCallId: 'call-9', tool: 'flaky', args: {} }],
        ['agent_completed', { status: 'failed', error: { message: 'overloaded', code: 'up_503' } }],
      ],
    );
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ message: 'overloaded', code: 'up_503' });
    expect(outcomes[0]?.result).toBeUndefined();
    expectNoConsoleNoise();
  });
});

describe('a TCP connection cut, then resumed with Last-Event-ID', () => {
  const cuts: [string, (event: BaseEvent) => boolean][] = [
    ['after the first event', () => true],
    ['mid-reasoning', (event) => event.type === 'REASONING_MESSAGE_CONTENT'],
    ['just after TOOL_CALL_END', (event) => event.type === 'TOOL_CALL_END'],
    ['mid-text', (event) => event.type === 'TEXT_MESSAGE_CONTENT'],
  ];

  it.each(cuts)('ends with the messages of an uninterrupted run: cut %s', async (_name, cut) => {
    const run = await newRun();
    const raw: string[] = [];
    const { agent, setCut } = newAgent(run, { cutAfter: cut, raw });
    const first = await attachThenPublish(run, [agent]);
    // The cut left the run unfinished for the agent.
    expect(first.outcomes[0]?.result).toBeUndefined();
    expect(withoutMetadata(agent.messages)).not.toEqual(expectedMessages(run.runId));
    await waitFor(() => run.gateway.gateway.aguiStreamCount === 0, {
      what: 'the cut stream released',
    });

    setCut(() => false);
    agent.headers = { ...agent.headers, 'Last-Event-ID': first.cursors[0] ?? '' };
    const resumed = await agent.runAgent({ runId: run.runId });
    expect(resumed.result).toEqual(RESULT);
    expect(withoutMetadata(agent.messages)).toEqual(expectedMessages(run.runId));
    // Resumed within history: no snapshot, and nothing the agent held came again.
    expect(raw).toHaveLength(2);
    expect(raw[1]).not.toContain('MESSAGES_SNAPSHOT');
    const ids = (text: string): string[] =>
      [...text.matchAll(/^id: (.*)$/gm)].map((m) => m[1] ?? '');
    expect(ids(raw[1] ?? '').filter((id) => ids(raw[0] ?? '').includes(id))).toEqual([]);
    expectNoConsoleNoise();
  });
});

describe('a cut at every cursor of a coalesced stream (default window)', () => {
  it('resumes each with Last-Event-ID to the messages of an uninterrupted run', async () => {
    const whole = await newRun(coalescing);
    const wholeRaw: string[] = [];
    await attachThenPublish(whole, [newAgent(whole, { raw: wholeRaw }).agent]);
    const count = [...(wholeRaw[0] ?? '').matchAll(/^id: /gm)].length;
    // Cursors naming a part of a group that merged several deltas.
    let mergedPartCuts = 0;
    for (let cutAt = 1; cutAt < count; cutAt++) {
      const run = await newRun(coalescing);
      const raw: string[] = [];
      let seen = 0;
      let cutBlock = '';
      const { agent, setCut } = newAgent(run, {
        raw,
        cutAfter: (event) => {
          seen++;
          if (seen !== cutAt) return false;
          cutBlock = JSON.stringify(event);
          return true;
        },
      });
      const first = await attachThenPublish(run, [agent]);
      await waitFor(() => coalescing.gateway.aguiStreamCount === 0, {
        what: 'the cut stream released',
      });
      if (first.outcomes[0]?.result !== undefined) continue; // this run had fewer events
      const cursor = first.cursors[0] ?? '';
      if (cursor.includes('.') && /"seqFrom":\d+/.test(cutBlock)) mergedPartCuts++;
      setCut(() => false);
      agent.headers = { ...agent.headers, 'Last-Event-ID': cursor };
      const resumed = await agent.runAgent({ runId: run.runId });
      expect(resumed.result, cursor).toEqual(RESULT);
      expect(withoutMetadata(agent.messages), cursor).toEqual(expectedMessages(run.runId));
    }
    expect(mergedPartCuts).toBeGreaterThan(0);
    expectNoConsoleNoise();
  });
});

describe('the bytes of a stream', () => {
  it('have no CR, and ids that strictly increase and match metadata.agentsocket.cursor', async () => {
    const run = await newRun();
    const raw: string[] = [];
    const { agent } = newAgent(run, { raw });
    await attachThenPublish(run, [agent]);
    const text = raw[0] ?? '';
    expect(text).not.toContain('\r');
    const blocks = text.split('\n\n').filter((block) => block !== '' && !block.startsWith(':'));
    const withIds = blocks.filter((block) => block.startsWith('id: '));
    expect(withIds.length).toBeGreaterThan(10);
    const positions = withIds.map((block) => {
      const id = /^id: (.*)$/m.exec(block)?.[1] ?? '';
      const event = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null') as BaseEvent;
      expect(cursorOf(event)).toBe(id);
      const parsed = parseLastEventId(id);
      if (!parsed.ok || parsed.value === null) throw new Error(`bad id ${id}`);
      return parsed.value;
    });
    for (let i = 1; i < positions.length; i++) {
      expect(
        compareAguiPositions(positions[i - 1] as AguiPosition, positions[i] as AguiPosition),
      ).toBeLessThan(0);
    }
    // It ends right after the terminal event.
    expect(blocks.at(-1)).toContain('"type":"RUN_FINISHED"');
  });

  it('merges deltas that come within the window (default 40 ms), to the same messages', async () => {
    const run = await newRun(coalescing);
    const raw: string[] = [];
    const { agent } = newAgent(run, { raw });
    const { outcomes } = await attachThenPublish(run, [agent]);
    expect(raw[0]).toMatch(/"seqFrom":\d+/);
    expect(outcomes[0]?.result).toEqual(RESULT);
    expect(withoutMetadata(agent.messages)).toEqual(expectedMessages(run.runId));
    expectNoConsoleNoise();
  });
});

describe('fresh agents (snapshot mode)', () => {
  const ASKED: Message = { id: 'u1', role: 'user', content: 'Weather in Paris?' };

  it('get the same messages attaching mid-run and after completion', async () => {
    const run = await newRun(coalescing);
    await run.gateway.publishRun(run.userId, run.runId, [STARTED, ...REST.slice(0, 6)]);
    const mid = newAgent(run, { initialMessages: [ASKED] });
    let started = false;
    const midRun = mid.agent.runAgent(
      { runId: run.runId },
      { onRunStartedEvent: () => void (started = true) },
    );
    await waitFor(() => started, { what: 'the mid-run agent started' });
    await run.gateway.publishRun(run.userId, run.runId, REST.slice(6));
    expect((await midRun).result).toEqual(RESULT);

    const after = newAgent(run, { initialMessages: [ASKED] });
    expect((await after.agent.runAgent({ runId: run.runId })).result).toEqual(RESULT);

    const expected = [ASKED, ...expectedMessages(run.runId)];
    expect(withoutMetadata(mid.agent.messages)).toEqual(expected);
    expect(withoutMetadata(after.agent.messages)).toEqual(expected);
    expectNoConsoleNoise();
  });

  it('20 agents on one run finish identical', async () => {
    const run = await newRun(coalescing);
    const agents = Array.from({ length: 20 }, () => newAgent(run).agent);
    const { outcomes } = await attachThenPublish(run, agents);
    for (const [index, agent] of agents.entries()) {
      expect(outcomes[index]?.result).toEqual(RESULT);
      expect(withoutMetadata(agent.messages)).toEqual(expectedMessages(run.runId));
    }
    await waitFor(() => coalescing.gateway.aguiStreamCount === 0, { what: 'streams released' });
    expectNoConsoleNoise();
  });
});

describe('a resume whose run left history', () => {
  it("falls back to snapshot mode and still ends with the run's messages", async () => {
    const short = await startAguiGateway({ historySize: 4, agui: { coalesceWindowMs: 0 } });
    try {
      const run = await newRun(short);
      const raw: string[] = [];
      const { agent, setCut } = newAgent(run, {
        raw,
        cutAfter: (event) => event.type === 'REASONING_MESSAGE_CONTENT',
      });
      const first = await attachThenPublish(run, [agent]);
      expect(first.outcomes[0]?.result).toBeUndefined();
      setCut(() => false);
      agent.headers = { ...agent.headers, 'Last-Event-ID': first.cursors[0] ?? '' };
      const resumed = await agent.runAgent({ runId: run.runId });
      expect(raw[1]).toContain('MESSAGES_SNAPSHOT');
      expect(resumed.result).toEqual(RESULT);
      expect(withoutMetadata(agent.messages)).toEqual(expectedMessages(run.runId));
      expectNoConsoleNoise();
    } finally {
      await short.close();
    }
  });
});
