/**
 * The AG-UI mapping, resume and snapshot mode as a stock `@ag-ui/client`
 * HttpAgent consumes them: our SSE bytes served over loopback HTTP, read by
 * the client's real fetch, SSE parser, enforcement (schema), verifier and
 * reducer. No gateway here: the route comes later; the server computes the
 * body from the run's events with the pure modules.
 */
import { HttpAgent } from '@ag-ui/client';
import type { Message, RunErrorEvent } from '@ag-ui/core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import fc from 'fast-check';
import { AguiMapper, type AguiRunIdentity } from '../../src/agui/agui-mapping.js';
import { resumeAtCursor, runMessages, startFromSnapshot } from '../../src/agui/agui-resume.js';
import type { AgentsocketEvent, AguiOutput } from '../../src/agui/agui-types.js';
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
import { foldRun } from '../helpers/reference-run-fold.js';
import { startSseTestServer, type SseRequest, type SseTestServer } from '../helpers/sse-test-server.js';

const IDENTITY: AguiRunIdentity = { runId: TEST_RUN_ID, threadId: TEST_THREAD_ID, epoch: TEST_EPOCH };

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
function routeLike(events: readonly AgentsocketEvent[], request: SseRequest, snapshotAt: number): string {
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
let warn: MockInstance;
let error: MockInstance;

beforeAll(async () => {
  server = await startSseTestServer((request) => respond(request));
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  warn = vi.spyOn(console, 'warn');
  error = vi.spyOn(console, 'error');
});
afterEach(() => {
  vi.restoreAllMocks();
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

function expectNoConsoleNoise(): void {
  expect(warn.mock.calls).toEqual([]);
  expect(error.mock.calls).toEqual([]);
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
    expect(call?.role === 'assistant' && JSON.parse(call.toolCalls?.[0]?.function.arguments ?? '')).toEqual(
      DEMO_ARGS,
    );
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
        (JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null') as { metadata: { agentsocket: { cursor: string } } })
          .metadata.agentsocket.cursor,
    );
    expect(ids).toEqual(cursors);
    const positions = ids.map((id) => {
      const parsed = parseLastEventId(id);
      if (!parsed.ok || parsed.value === null) throw new Error(`bad id ${String(id)}`);
      return parsed.value.seq + (parsed.value.index === null ? 0.999 : parsed.value.index / 1000);
    });
    for (let i = 1; i < positions.length; i += 1) {
      expect(positions[i]).toBeGreaterThan(positions[i - 1] as number);
    }
  });

  it('fires onRunErrorEvent once for a failed run, closing what was open', async () => {
    const events = runEvents([
      ['agent_started', { agent: 'demo' }],
      ['agent_text', { text: 'Let me try' }],
      ['tool_executing', { toolCallId: 'call-9', tool: 'flaky', args: {} }],
      ['agent_completed', { status: 'failed', error: { message: 'model overloaded', code: 'upstream_503' } }],
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
