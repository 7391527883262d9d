/**
 * The mapper and the resume functions as plain data: ids, cursors, metadata,
 * fallbacks to CUSTOM, bounds, and the state a snapshot restores. How a stock
 * client reads the result is agui-http-agent.test.ts's job.
 */
import { EventType } from '@ag-ui/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AGENT_FAILED_CODE,
  AguiMapper,
  MAX_TRACKED_TEXT_MESSAGE_IDS,
  MAX_TRACKED_TOOL_CALLS,
  type AguiMapperState,
  type AguiRunIdentity,
} from '../../src/agui/agui-mapping.js';
import { AguiResumeError, resumeAtCursor, runMessages } from '../../src/agui/agui-resume.js';
import type { AgentsocketEvent, AguiOutput } from '../../src/agui/agui-types.js';
import type { JsonValue } from '../../src/protocol/frames.js';
import {
  TEST_EPOCH,
  TEST_RUN_ID,
  TEST_THREAD_ID,
  coalesceDeltas,
  demoRun,
  runEvents,
} from '../helpers/agent-run-events.js';
import { foldRun } from '../helpers/reference-run-fold.js';

const IDENTITY: AguiRunIdentity = {
  runId: TEST_RUN_ID,
  threadId: TEST_THREAD_ID,
  epoch: TEST_EPOCH,
};

function mapAll(
  events: readonly AgentsocketEvent[],
  mapper = new AguiMapper(IDENTITY),
): AguiOutput[] {
  return events.flatMap((event) => mapper.map(event));
}

const types = (outputs: readonly AguiOutput[]): string[] =>
  outputs.map((output) => output.event.type);

describe('AguiMapper', () => {
  it('maps the demo run to the documented AG-UI sequence with deterministic ids and cursors', () => {
    const outputs = mapAll(demoRun());
    expect(outputs.map((o) => [o.cursor, o.event.type])).toEqual([
      ['e_test:1', 'RUN_STARTED'],
      ['e_test:2.0', 'REASONING_START'],
      ['e_test:2.1', 'REASONING_MESSAGE_START'],
      ['e_test:2', 'REASONING_MESSAGE_CONTENT'],
      ['e_test:3', 'REASONING_MESSAGE_CONTENT'],
      ['e_test:4', 'REASONING_MESSAGE_CONTENT'],
      ['e_test:5.0', 'REASONING_MESSAGE_END'],
      ['e_test:5.1', 'REASONING_END'],
      ['e_test:5.2', 'TOOL_CALL_START'],
      ['e_test:5.3', 'TOOL_CALL_ARGS'],
      ['e_test:5', 'TOOL_CALL_END'],
      ['e_test:6', 'TOOL_CALL_RESULT'],
      ['e_test:7.0', 'TEXT_MESSAGE_START'],
      ['e_test:7', 'TEXT_MESSAGE_CONTENT'],
      ['e_test:8', 'TEXT_MESSAGE_CONTENT'],
      ['e_test:9', 'TEXT_MESSAGE_CONTENT'],
      ['e_test:10.0', 'TEXT_MESSAGE_END'],
      ['e_test:10', 'RUN_FINISHED'],
    ]);
    expect(outputs[2]?.event).toMatchObject({ messageId: 'run-1:r2', role: 'reasoning' });
    expect(outputs[8]?.event).toMatchObject({
      toolCallId: 'call-1',
      toolCallName: 'search',
      parentMessageId: 'run-1:call:call-1',
    });
    expect(outputs[11]?.event).toMatchObject({ messageId: 'run-1:result:call-1', role: 'tool' });
    expect(outputs[12]?.event).toMatchObject({ messageId: 'run-1:m7', role: 'assistant' });
    expect(outputs.at(-1)?.event).toMatchObject({
      threadId: TEST_THREAD_ID,
      runId: TEST_RUN_ID,
      result: { answer: 'It is sunny in Paris today.' },
      outcome: { type: 'success', pendingToolCallIds: [] },
    });
  });

  it('stamps every event with metadata.agentsocket naming its source event and cursor', () => {
    const events = demoRun();
    for (const output of mapAll(events)) {
      const meta = (output.event.metadata as { agentsocket: Record<string, unknown> }).agentsocket;
      const source = events.find((event) => event.seq === meta.seq);
      expect(source).toBeDefined();
      expect(meta).toMatchObject({
        epoch: TEST_EPOCH,
        id: source?.id,
        event: source?.event,
        cursor: output.cursor,
      });
      expect(output.event.timestamp).toBe(source?.ts);
    }
  });

  it('produces the same events twice over (a replay names everything alike)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 }), (length) => {
        const events = demoRun().slice(0, length);
        expect(mapAll(events)).toEqual(mapAll(events));
      }),
    );
  });

  it('names a merged delta frame by its first seq, like the raw deltas', () => {
    const merged = coalesceDeltas(demoRun());
    const outputs = mapAll(merged);
    const reasoning = outputs.find((o) => o.event.type === EventType.REASONING_MESSAGE_CONTENT);
    expect(reasoning?.event).toMatchObject({
      messageId: 'run-1:r2',
      delta: 'The user wants the weather; I will search.',
      metadata: { agentsocket: { seq: 4, seqFrom: 2, cursor: 'e_test:4' } },
    });
    const text = outputs.filter((o) => o.event.type === EventType.TEXT_MESSAGE_CONTENT);
    expect(text.map((o) => o.event)).toMatchObject([
      { messageId: 'run-1:m7', delta: 'It is sunny in Paris today.' },
    ]);
  });

  it('closes reasoning and text before any other kind of event, and switches text messages by messageId', () => {
    const outputs = mapAll(
      runEvents([
        ['agent_started', { agent: 'a' }],
        ['agent_text', { text: 'x', messageId: 'a' }],
        ['agent_text', { text: 'y', messageId: 'b' }],
        ['progress', { pct: 50 }],
        ['agent_thinking', { text: 'hmm' }],
        ['agent_text', { text: 'z' }],
        ['agent_completed', { status: 'succeeded' }],
      ]),
    );
    expect(types(outputs)).toEqual([
      'RUN_STARTED',
      'TEXT_MESSAGE_START',
      'TEXT_MESSAGE_CONTENT',
      'TEXT_MESSAGE_END',
      'TEXT_MESSAGE_START',
      'TEXT_MESSAGE_CONTENT',
      'TEXT_MESSAGE_END',
      'CUSTOM',
      'REASONING_START',
      'REASONING_MESSAGE_START',
      'REASONING_MESSAGE_CONTENT',
      'REASONING_MESSAGE_END',
      'REASONING_END',
      'TEXT_MESSAGE_START',
      'TEXT_MESSAGE_CONTENT',
      'TEXT_MESSAGE_END',
      'RUN_FINISHED',
    ]);
    expect(outputs[7]?.event).toMatchObject({ name: 'progress', value: { pct: 50 } });
    expect(outputs[13]?.event).toMatchObject({ messageId: 'run-1:m6' });
  });

  it('sends state events as STATE_*, and a delta that is no JSON Patch as CUSTOM', () => {
    const patch = [{ op: 'replace', path: '/step', value: 2 }];
    const outputs = mapAll(
      runEvents([
        ['agent_started', { agent: 'a' }],
        ['state_snapshot', { step: 1 }],
        ['state_delta', patch],
        ['state_delta', [{ op: 'replace', path: 'step' }]],
        ['state_delta', { step: 3 }],
      ]),
    );
    expect(outputs.slice(1).map((o) => o.event)).toMatchObject([
      { type: 'STATE_SNAPSHOT', snapshot: { step: 1 } },
      { type: 'STATE_DELTA', delta: patch },
      { type: 'CUSTOM', name: 'state_delta' },
      { type: 'CUSTOM', name: 'state_delta', value: { step: 3 } },
    ]);
  });

  it('sends agent events with malformed data as CUSTOM rather than a field the client would reject', () => {
    const outputs = mapAll(
      runEvents([
        ['agent_started', { agent: 'a' }],
        ['agent_thinking', { text: 5 }],
        ['agent_text', { text: 'x', messageId: 7 }],
        ['tool_executing', { toolCallId: 'c', args: {} }],
        ['tool_completed', { tool: 'x' }],
        ['agent_completed', { status: 'done' }],
        ['agent_started', { agent: 'again' }],
      ]),
    );
    expect(types(outputs)).toEqual(['RUN_STARTED', ...Array<string>(6).fill('CUSTOM')]);
  });

  it('answers a tool call once: a second tool_completed goes out as CUSTOM', () => {
    const outputs = mapAll(
      runEvents([
        ['agent_started', { agent: 'a' }],
        ['tool_executing', { toolCallId: 'c1', tool: 't', args: null }],
        ['tool_completed', { toolCallId: 'c1', tool: 't', error: 'boom' }],
        ['tool_completed', { toolCallId: 'c1', tool: 't', result: 1 }],
        ['tool_executing', { toolCallId: 'c1', tool: 't', args: null }],
      ]),
    );
    expect(types(outputs)).toEqual([
      'RUN_STARTED',
      'TOOL_CALL_START',
      'TOOL_CALL_ARGS',
      'TOOL_CALL_END',
      'TOOL_CALL_RESULT',
      'CUSTOM',
      'CUSTOM',
    ]);
    expect(outputs[4]?.event).toMatchObject({ content: '{"error":"boom"}' });
  });

  it('ends a run as RUN_FINISHED or RUN_ERROR and produces nothing after it', () => {
    const end = (data: JsonValue): AguiOutput[] => {
      const mapper = new AguiMapper(IDENTITY);
      const events = runEvents([
        ['agent_started', { agent: 'a' }],
        ['tool_executing', { toolCallId: 'c1', tool: 't', args: {} }],
        ['agent_completed', data],
        ['agent_text', { text: 'late' }],
      ]);
      return mapAll(events, mapper).slice(4);
    };
    expect(end({ status: 'succeeded', result: null, usage: { tokens: 3 } })).toMatchObject([
      {
        event: {
          type: 'RUN_FINISHED',
          outcome: { type: 'success', pendingToolCallIds: ['c1'] },
          metadata: { agentsocket: { completion: { status: 'succeeded', usage: { tokens: 3 } } } },
        },
      },
    ]);
    expect(end({ status: 'succeeded', result: null })[0]?.event).not.toHaveProperty('result');
    expect(end({ status: 'cancelled' })).toMatchObject([
      { event: { type: 'RUN_FINISHED', outcome: { type: 'cancelled' } } },
    ]);
    expect(end({ status: 'failed', error: 'no' })).toMatchObject([
      { event: { type: 'RUN_ERROR', message: 'no', code: AGENT_FAILED_CODE } },
    ]);
    expect(end({ status: 'failed' })).toMatchObject([
      { event: { type: 'RUN_ERROR', message: 'the agent run failed' } },
    ]);
  });

  it('puts RUN_STARTED first even when agent_started never came, and ignores other runs', () => {
    const mapper = new AguiMapper(IDENTITY);
    const [other] = runEvents([['agent_text', { text: 'x' }]], 'run-2');
    expect(mapper.map(other as AgentsocketEvent)).toEqual([]);
    const [text] = runEvents([['agent_text', { text: 'x' }]]);
    expect(types(mapper.map(text as AgentsocketEvent))).toEqual([
      'RUN_STARTED',
      'TEXT_MESSAGE_START',
      'TEXT_MESSAGE_CONTENT',
    ]);
  });

  it(`keeps at most ${MAX_TRACKED_TOOL_CALLS} tool calls per set, forgetting the oldest`, () => {
    const count = MAX_TRACKED_TOOL_CALLS + 10;
    const items: [string, JsonValue][] = [['agent_started', { agent: 'a' }]];
    for (let i = 0; i < count; i += 1) {
      items.push(['tool_executing', { toolCallId: `c${i}`, tool: 't', args: null }]);
      items.push(['tool_completed', { toolCallId: `c${i}`, tool: 't', result: i }]);
    }
    for (let i = 0; i < count; i += 1) {
      items.push(['tool_executing', { toolCallId: `p${i}`, tool: 't', args: null }]);
    }
    const mapper = new AguiMapper(IDENTITY);
    mapAll(runEvents(items), mapper);
    const { answeredToolCalls, pendingToolCalls } = mapper.state;
    expect(answeredToolCalls).toHaveLength(MAX_TRACKED_TOOL_CALLS);
    expect(answeredToolCalls[0]).toBe('c10');
    expect(pendingToolCalls).toHaveLength(MAX_TRACKED_TOOL_CALLS);
    expect(pendingToolCalls[0]).toBe('p10');
  });
});

/** A state compared as what it means: tool-call sets regardless of order. */
function normalized(state: AguiMapperState): AguiMapperState {
  return {
    ...state,
    pendingToolCalls: [...state.pendingToolCalls].sort(),
    answeredToolCalls: [...state.answeredToolCalls].sort(),
    textMessageIds: [...state.textMessageIds].sort(),
  };
}

describe('AguiMapper.fromSnapshot', () => {
  it('restores the state a mapper reaches by mapping the same events', () => {
    const step = fc.oneof(
      fc.constant<[string, JsonValue]>(['agent_thinking', { text: 't' }]),
      fc.constant<[string, JsonValue]>(['agent_text', { text: 'x' }]),
      fc.constant<[string, JsonValue]>(['agent_text', { text: 'x', messageId: 'named' }]),
      fc.constant<[string, JsonValue]>(['progress', 1]),
      fc.constant<[string, JsonValue]>(['tool_executing', { tool: 't', args: null }]),
      fc.constant<[string, JsonValue]>(['tool_completed', { tool: 't' }]),
      fc.constant<[string, JsonValue]>(['agent_completed', { status: 'cancelled' }]),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 20 }), (steps) => {
        const items: [string, JsonValue][] = [['agent_started', { agent: 'a' }]];
        // A well-formed run answers only open tool calls, each once, and ends once.
        const open: string[] = [];
        let calls = 0;
        for (const [event, data] of steps) {
          if (items.at(-1)?.[0] === 'agent_completed') break;
          if (event === 'tool_executing') {
            open.push(`c${(calls += 1)}`);
            items.push([event, { ...(data as object), toolCallId: open.at(-1) as string }]);
          } else if (event === 'tool_completed') {
            const toolCallId = open.pop();
            if (toolCallId !== undefined) items.push([event, { ...(data as object), toolCallId }]);
          } else {
            items.push([event, data]);
          }
        }
        const events = runEvents(items);
        const fed = new AguiMapper(IDENTITY);
        mapAll(events, fed);
        const restored = AguiMapper.fromSnapshot(foldRun(events));
        expect(normalized(restored.state)).toEqual(normalized(fed.state));
        expect(restored.reopeningStarts()).toEqual(fed.reopeningStarts());
      }),
    );
  });
});

describe('AguiMapper.fromSnapshot with a publisher messageId shaped like a generated one', () => {
  it('continues the open message when the next delta names it', () => {
    const events = runEvents([
      ['agent_started', { agent: 'a' }],
      ['agent_text', { text: 'x', messageId: 'm9' }],
      ['agent_text', { text: 'y', messageId: 'm9' }],
    ]);
    const restored = AguiMapper.fromSnapshot(foldRun(events.slice(0, 2)));
    expect(restored.map(events[2] as AgentsocketEvent).map((o) => o.event)).toMatchObject([
      { type: 'TEXT_MESSAGE_CONTENT', messageId: 'run-1:m9', delta: 'y' },
    ]);
  });
});

describe('text part ids: live, resumed and snapshot streams name every part alike', () => {
  const liveStartIds = (events: readonly AgentsocketEvent[]): unknown[] =>
    mapAll(events)
      .map((output) => output.event)
      .filter((event) => event.type === EventType.TEXT_MESSAGE_START)
      .map((event) => (event as { messageId: string }).messageId);
  const textMessageIds = (events: readonly AgentsocketEvent[]): string[] =>
    runMessages(foldRun(events))
      .filter((message) => message.role === 'assistant' && !('toolCalls' in message))
      .map((message) => message.id);

  it('names a messageId that comes back after a tool call as a new part, as the fold does', () => {
    const events = runEvents([
      ['agent_started', { agent: 'a' }],
      ['agent_text', { text: 'hello ', messageId: 'a' }],
      ['tool_executing', { toolCallId: 'c1', tool: 'x', args: {} }],
      ['tool_completed', { toolCallId: 'c1', tool: 'x', result: 1 }],
      ['agent_text', { text: 'world', messageId: 'a' }],
      ['agent_text', { text: '!', messageId: 'a' }],
    ]);
    expect(liveStartIds(events)).toEqual(['run-1:a', 'run-1:a:5']);
    expect(textMessageIds(events)).toEqual(['run-1:a', 'run-1:a:5']);
    const resumed = resumeAtCursor({
      snapshot: foldRun(events.slice(0, 5)),
      position: { epoch: TEST_EPOCH, seq: 5, index: null },
    });
    const live = new AguiMapper(IDENTITY);
    mapAll(events.slice(0, 5), live);
    const next = events[5] as AgentsocketEvent;
    expect(resumed.mapper.map(next)).toEqual(live.map(next));
    expect(resumed.mapper.state.open).toMatchObject({ partId: 'a:5', messageId: 'a' });
  });

  it('opens a new message for an unnamed delta after a publisher messageId shaped like a generated one', () => {
    const events = runEvents([
      ['agent_started', { agent: 'a' }],
      ['agent_text', { text: 'x', messageId: 'm7' }],
      ['agent_text', { text: 'y' }],
    ]);
    const restored = AguiMapper.fromSnapshot(foldRun(events.slice(0, 2)));
    const live = new AguiMapper(IDENTITY);
    mapAll(events.slice(0, 2), live);
    const next = events[2] as AgentsocketEvent;
    const expected = live.map(next);
    expect(expected.map((o) => o.event)).toContainEqual(
      expect.objectContaining({ type: 'TEXT_MESSAGE_START', messageId: 'run-1:m3' }),
    );
    expect(restored.map(next)).toEqual(expected);
  });

  it(`keeps at most ${MAX_TRACKED_TEXT_MESSAGE_IDS} text messageIds, forgetting the oldest`, () => {
    const items: [string, JsonValue][] = [['agent_started', { agent: 'a' }]];
    for (let i = 0; i < MAX_TRACKED_TEXT_MESSAGE_IDS + 10; i += 1) {
      items.push(['agent_text', { text: 'x', messageId: `id${i}` }]);
    }
    const mapper = new AguiMapper(IDENTITY);
    mapAll(runEvents(items), mapper);
    const { textMessageIds } = mapper.state;
    expect(textMessageIds).toHaveLength(MAX_TRACKED_TEXT_MESSAGE_IDS);
    expect(textMessageIds[0]).toBe('id10');
  });
});

describe('resumeAtCursor', () => {
  const events = demoRun();
  const upTo = (seq: number): AgentsocketEvent[] => events.filter((event) => event.seq <= seq);

  it('re-opens a tool call cut after its TOOL_CALL_START, then sends the rest of the group', () => {
    const start = resumeAtCursor({
      snapshot: foldRun(upTo(4)),
      position: { epoch: TEST_EPOCH, seq: 5, index: 2 },
      cursorEvent: events[4],
    });
    expect(start.outputs.map((o) => [o.cursor, o.event.type])).toEqual([
      [null, 'RUN_STARTED'],
      [null, 'TOOL_CALL_START'],
      ['e_test:5.3', 'TOOL_CALL_ARGS'],
      ['e_test:5', 'TOOL_CALL_END'],
    ]);
    expect(start.outputs[1]?.event).toMatchObject({
      toolCallId: 'call-1',
      metadata: { agentsocket: { restated: true, cursor: 'e_test:5.2', seq: 5 } },
    });
  });

  it('re-opens the reasoning span and message open at a whole cursor', () => {
    const start = resumeAtCursor({
      snapshot: foldRun(upTo(3)),
      position: { epoch: TEST_EPOCH, seq: 3, index: null },
    });
    expect(types(start.outputs)).toEqual([
      'RUN_STARTED',
      'REASONING_START',
      'REASONING_MESSAGE_START',
    ]);
    expect(types(start.mapper.map(events[3] as AgentsocketEvent))).toEqual([
      'REASONING_MESSAGE_CONTENT',
    ]);
  });

  it.each([
    ['epoch_mismatch', { epoch: 'e_other', seq: 3, index: null }, 3, undefined],
    ['snapshot_ahead_of_cursor', { epoch: TEST_EPOCH, seq: 3, index: null }, 4, undefined],
    ['snapshot_ahead_of_cursor', { epoch: TEST_EPOCH, seq: 5, index: 1 }, 5, 4],
    ['cursor_event_missing', { epoch: TEST_EPOCH, seq: 5, index: 1 }, 4, undefined],
    ['cursor_event_missing', { epoch: TEST_EPOCH, seq: 5, index: 1 }, 4, 3],
    ['index_outside_group', { epoch: TEST_EPOCH, seq: 5, index: 4 }, 4, 4],
  ] as const)('refuses with %s', (code, position, foldedTo, cursorEventIndex) => {
    const resume = (): unknown =>
      resumeAtCursor({
        snapshot: foldRun(upTo(foldedTo)),
        position,
        cursorEvent: cursorEventIndex === undefined ? undefined : events[cursorEventIndex],
      });
    expect(resume).toThrow(AguiResumeError);
    expect(resume).toThrow(expect.objectContaining({ code }) as Error);
  });
});
