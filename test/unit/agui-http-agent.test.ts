/**
 * The AG-UI mapping, resume and snapshot mode as a stock `@ag-ui/client`
 * HttpAgent consumes them: our SSE bytes served over loopback HTTP, read by
 * the client's real fetch, SSE parser, enforcement (schema), verifier and
 * reducer. No gateway here: the route comes later; the server computes the
 * body from the run's events with the pure modules.
 */
import { HttpAgent } from '@ag-ui/client';
import type { Message, RunErrorEvent } from '@ag-ui/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { compareAguiPositions, type AguiPosition } from '../../src/agui/agui-cursor.js';
import { AguiMapper, type AguiRunIdentity } from '../../src/agui/agui-mapping.js';
import { resumeAtCursor, runMessages, startFromSnapshot } from '../../src/agui/agui-resume.js';
import type { AgentsocketEvent, AguiOutput } from '../../src/agui/agui-types.js';
import type { JsonValue } from '../../src/protocol/frames.js';
import { encodeSseEvent, parseLastEventId } from '../../src/agui/sse-encoding.js';
import {
  DEMO_ARGS,
  DEMO_RESULT,
  TEST_EPOCH,
  TEST_RUN_ID,
  TEST_THREAD_ID,
  coalesceDeltas,
  demoRun,
  runEvents,
} from '../helpers/agent-run-events.js';
import { watchConsoleNoise } from '../helpers/console-noise.js';
import { foldRun } from '../helpers/reference-run-fold.js';
import {
  startSseTestServer,
  type SseRequest,
  type SseTestServer,
} from '../helpers/sse-test-server.js';

const IDENTITY: AguiRunIdentity = {
  runId: TEST_RUN_ID,
  threadId: TEST_THREAD_ID,
  epoch: TEST_EPOCH,
};

/** Everything a from-scratch mapper produces for `events`. */
function mapAll(events: readonly AgentsocketEvent[]): AguiOutput[] {
  const mapper = new AguiMapper(IDENTITY);
  return events.flatMap((event) => mapper.map(event));
}

const body = (outputs: readonly AguiOutput[]): string => outputs.map(encodeSseEvent).join('');

/**
 * What the future route will do, with the pure modules: a valid Last-Event-ID
 * resumes within history (the snapshot folded up to the cursor), none gives
 * snapshot mode at `snapshotAt` (the run as far as it has gone) plus the tail.
 */
function routeLike(
  events: readonly AgentsocketEvent[],
  request: SseRequest,
  snapshotAt: number,
): string {
  const lastEventId = parseLastEventId(request.headers['last-event-id']);
  if (!lastEventId.ok) throw new Error(lastEventId.failure.message);
  const position = lastEventId.value;
  if (position === null) {
    const requestMessages = (request.body as { messages: Message[] }).messages;
    const start = startFromSnapshot({
      snapshot: foldRun(events.filter((event) => event.seq <= snapshotAt)),
      requestMessages,
    });
    const tail = events.filter((event) => event.seq > snapshotAt);
    return body([...start.outputs, ...tail.flatMap((event) => start.mapper.map(event))]);
  }
  const folded = events.filter((event) =>
    position.index === null ? event.seq <= position.seq : event.seq < position.seq,
  );
  const cursorEvent = events.find((event) => event.seq === position.seq);
  const start = resumeAtCursor({ snapshot: foldRun(folded), position, cursorEvent });
  const tail = events.filter((event) => event.seq > position.seq);
  return body([...start.outputs, ...tail.flatMap((event) => start.mapper.map(event))]);
}

/** Messages without the `metadata` the reducer folds in from each event (it names positions). */
function withoutMetadata(messages: readonly Message[]): unknown[] {
  return JSON.parse(
    JSON.stringify(messages, (key, value: unknown) => (key === 'metadata' ? undefined : value)),
  ) as unknown[];
}

let server: SseTestServer;
let respond: (request: SseRequest) => string = () => '';
const { expectNoConsoleNoise } = watchConsoleNoise();

beforeAll(async () => {
  server = await startSseTestServer((request) => respond(request));
});
afterAll(async () => {
  await server.close();
});

function newAgent(initialMessages: Message[] = []): HttpAgent {
  return new HttpAgent({ url: server.url, threadId: TEST_THREAD_ID, initialMessages });
}

/** The run streamed whole to a fresh agent: the reference every other path must match. */
async function uninterrupted(events: readonly AgentsocketEvent[], initialMessages: Message[] = []) {
  respond = () => body(mapAll(events));
  const agent = newAgent(initialMessages);
  const outcome = await agent.runAgent({ runId: TEST_RUN_ID });
  return { agent, outcome };
}

describe('a stock HttpAgent consuming a mapped run', () => {
  it('resolves the demo run with its result and messages, without a warning', async () => {
    const { agent, outcome } = await uninterrupted(demoRun());

    expect(outcome.result).toEqual(DEMO_RESULT);
    expect(withoutMetadata(agent.messages)).toEqual([
      { id: 'run-1:r2', role: 'reasoning', content: 'The user wants the weather; I will search.' },
      {
        id: 'run-1:call:call-1',
        role: 'assistant',
        toolCalls: [
          {
            id: 'call-1',
            type: 'function',
            function: { name: 'search', arguments: JSON.stringify(DEMO_ARGS) },
          },
        ],
      },
      {
        id: 'run-1:result:call-1',
        role: 'tool',
        toolCallId: 'call-1',
        content: JSON.stringify({ hits: ['sunny'] }),
      },
      { id: 'run-1:m7', role: 'assistant', content: 'It is sunny in Paris today.' },
    ]);
    const call = agent.messages[1];
    expect(
      call?.role === 'assistant' && JSON.parse(call.toolCalls?.[0]?.function.arguments ?? ''),
    ).toEqual(DEMO_ARGS);
    expectNoConsoleNoise();
  });

  it('writes LF-only bytes whose ids strictly increase and match metadata.agentsocket.cursor', async () => {
    await uninterrupted(demoRun());
    const raw = server.sent.at(-1) ?? '';
    expect(raw).not.toContain('\r');
    const blocks = raw.split('\n\n').filter((block) => block !== '');
    const ids = blocks.map((block) => /^id: (.*)$/m.exec(block)?.[1]);
    const cursors = blocks.map(
      (block) =>
        (
          JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null') as {
            metadata: { agentsocket: { cursor: string } };
          }
        ).metadata.agentsocket.cursor,
    );
    expect(ids).toEqual(cursors);
    const positions = ids.map((id) => {
      const parsed = parseLastEventId(id);
      if (!parsed.ok || parsed.value === null) throw new Error(`bad id ${String(id)}`);
      return parsed.value;
    });
    for (let i = 1; i < positions.length; i += 1) {
      const order = compareAguiPositions(
        positions[i - 1] as AguiPosition,
        positions[i] as AguiPosition,
      );
      expect(order, `${ids[i - 1]} before ${ids[i]}`).toBeLessThan(0);
    }
  });

  it('fires onRunErrorEvent once for a failed run, closing what was open', async () => {
    const events = runEvents([
      ['agent_started', { agent: 'demo' }],
      ['agent_text', { text: 'Let me try' }],
      ['tool_executing', { toolCallId: 'call-9', tool: 'flaky', args: {} }],
      [
        'agent_completed',
        { status: 'failed', error: { message: 'model overloaded', code: 'upstream_503' } },
      ],
    ]);
    respond = () => body(mapAll(events));
    const errors: RunErrorEvent[] = [];
    const agent = newAgent();
    const outcome = await agent.runAgent(
      { runId: TEST_RUN_ID },
      { onRunErrorEvent: ({ event }) => void errors.push(event) },
    );
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ message: 'model overloaded', code: 'upstream_503' });
    expect(outcome.result).toBeUndefined();
    expect(server.sent.at(-1)?.match(/"type":"RUN_ERROR"/g)).toHaveLength(1);
    expectNoConsoleNoise();
  });
});

/**
 * Cuts the stream after `received` AG-UI events (a clean end without a
 * terminal event), then runs the same agent again with `Last-Event-ID` set to
 * the cursor of the last event it got, as an app does.
 */
async function cutAndResume(
  events: readonly AgentsocketEvent[],
  received: number,
): Promise<HttpAgent> {
  const outputs = mapAll(events);
  const agent = newAgent();
  let lastCursor: string | undefined;
  respond = () => body(outputs.slice(0, received));
  await agent.runAgent(
    { runId: TEST_RUN_ID },
    {
      onEvent: ({ event }) => {
        lastCursor = (event.metadata as { agentsocket: { cursor: string } }).agentsocket.cursor;
      },
    },
  );
  expect(lastCursor).toBe(outputs[received - 1]?.cursor);
  agent.headers = { 'Last-Event-ID': lastCursor ?? '' };
  respond = (request) => routeLike(events, request, 0);
  await agent.runAgent({ runId: TEST_RUN_ID });
  return agent;
}

describe('resume with Last-Event-ID', () => {
  it('ends with the messages of an uninterrupted run, whichever cursor the stream was cut at', async () => {
    const events = demoRun();
    const reference = await uninterrupted(events);
    const outputs = mapAll(events);
    // Every cut that leaves the run unfinished: after the first event, mid-reasoning,
    // inside a group (e.g. after TOOL_CALL_START), just after TOOL_CALL_END, mid-text.
    for (let received = 1; received < outputs.length; received += 1) {
      const agent = await cutAndResume(events, received);
      expect(agent.messages, `cut after ${outputs[received - 1]?.cursor}`).toEqual(
        reference.agent.messages,
      );
    }
    expectNoConsoleNoise();
  });

  it('resolves the resumed run with the published result', async () => {
    const events = demoRun();
    const outputs = mapAll(events);
    const textIndex = outputs.findIndex((output) => output.event.type === 'TEXT_MESSAGE_CONTENT');
    const agent = await cutAndResume(events, textIndex + 1);
    respond = (request) => routeLike(events, request, 0);
    const outcome = await agent.runAgent({ runId: TEST_RUN_ID });
    expect(outcome.result).toEqual(DEMO_RESULT);
    expectNoConsoleNoise();
  });
});

describe('snapshot mode (no Last-Event-ID)', () => {
  const USER: Message = { id: 'u1', role: 'user', content: 'Weather in Paris?' };

  it('gives a fresh agent the same messages, attaching at any point of the run or after it', async () => {
    const events = demoRun();
    const reference = await uninterrupted(events, [USER]);
    for (const event of events) {
      respond = (request) => routeLike(events, request, event.seq);
      const agent = newAgent([USER]);
      const outcome = await agent.runAgent({ runId: TEST_RUN_ID });
      expect(withoutMetadata(agent.messages), `attached after seq ${event.seq}`).toEqual(
        withoutMetadata(reference.agent.messages),
      );
      expect(outcome.result).toEqual(DEMO_RESULT);
    }
    expectNoConsoleNoise();
  });

  it('replaces, not duplicates, the part of the run a client already holds', async () => {
    const events = demoRun();
    const reference = await uninterrupted(events, [USER]);
    const outputs = mapAll(events);
    for (const received of [3, 9, outputs.length - 3]) {
      const agent = newAgent([USER]);
      respond = () => body(outputs.slice(0, received));
      await agent.runAgent({ runId: TEST_RUN_ID });
      respond = (request) => routeLike(events, request, 8);
      await agent.runAgent({ runId: TEST_RUN_ID });
      expect(withoutMetadata(agent.messages), `held ${received} events`).toEqual(
        withoutMetadata(reference.agent.messages),
      );
    }
    expectNoConsoleNoise();
  });
});

describe('merged delta frames (seqFrom)', () => {
  it('give the same messages, under the same ids, as the raw deltas', async () => {
    const events = demoRun();
    const merged = coalesceDeltas(events);
    expect(merged.length).toBeLessThan(events.length);
    const reference = await uninterrupted(events);
    const fromMerged = await uninterrupted(merged);
    expect(withoutMetadata(fromMerged.agent.messages)).toEqual(
      withoutMetadata(reference.agent.messages),
    );
    expect(fromMerged.outcome.result).toEqual(DEMO_RESULT);
    expectNoConsoleNoise();
  });
});

/** Arbitrary well-formed runs: deltas, tool calls answered or not, custom and state events. */
const arbitraryRun = fc
  .array(
    fc.oneof(
      fc.record({ kind: fc.constant('thinking' as const), text: fc.string({ maxLength: 8 }) }),
      fc.record({
        kind: fc.constant('text' as const),
        text: fc.string({ maxLength: 8 }),
        messageId: fc.option(fc.constantFrom('a', 'b'), { nil: undefined }),
      }),
      fc.record({ kind: fc.constant('tool' as const), answered: fc.boolean() }),
      fc.record({ kind: fc.constant('custom' as const), value: fc.jsonValue() }),
      fc.record({ kind: fc.constant('state' as const), value: fc.jsonValue() }),
    ),
    { maxLength: 14 },
  )
  .map((steps) => {
    const items: [string, JsonValue][] = [['agent_started', { agent: 'prop' }]];
    let unanswered = false;
    steps.forEach((step, index) => {
      if (step.kind === 'thinking') items.push(['agent_thinking', { text: step.text }]);
      if (step.kind === 'text') {
        const { text, messageId } = step;
        items.push(['agent_text', messageId === undefined ? { text } : { text, messageId }]);
      }
      if (step.kind === 'tool') {
        const toolCallId = `t${index}`;
        items.push(['tool_executing', { toolCallId, tool: 'calc', args: { n: index } }]);
        if (step.answered)
          items.push(['tool_completed', { toolCallId, tool: 'calc', result: index }]);
        else unanswered = true;
      }
      if (step.kind === 'custom') items.push(['progress', step.value as JsonValue]);
      if (step.kind === 'state') items.push(['state_snapshot', step.value as JsonValue]);
    });
    // A succeeded run may not leave tool calls open (the run grammar's tool_calls_open).
    items.push([
      'agent_completed',
      unanswered ? { status: 'cancelled' } : { status: 'succeeded', result: { ok: true } },
    ]);
    return runEvents(items);
  });

describe('any well-formed run (fast-check)', () => {
  it('streams cleanly, its messages equal the snapshot messages, and a resume anywhere matches', async () => {
    await fc.assert(
      fc.asyncProperty(arbitraryRun, fc.nat(), async (events, cutSeed) => {
        const reference = await uninterrupted(events);
        expect(withoutMetadata(reference.agent.messages)).toEqual(
          withoutMetadata(runMessages(foldRun(events))),
        );
        const outputs = mapAll(events);
        const received = 1 + (cutSeed % (outputs.length - 1));
        const resumed = await cutAndResume(events, received);
        expect(resumed.messages).toEqual(reference.agent.messages);
        expectNoConsoleNoise();
      }),
      { numRuns: 40 },
    );
  });
});
