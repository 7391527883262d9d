/**
 * agentsocket events of one run as a consumer receives them, for the AG-UI
 * tests: consecutive seqs from 1 in one epoch, deterministic ids and times.
 */
import type { JsonValue } from '../../src/protocol/frames.js';
import type { AgentsocketEvent } from '../../src/agui/agui-types.js';

export const TEST_EPOCH = 'e_test';
export const TEST_RUN_ID = 'run-1';
export const TEST_THREAD_ID = 'thread-1';

/** Events of run `runId` from `(event, data)` pairs, seqs 1, 2, 3, … */
export function runEvents(
  items: readonly (readonly [string, JsonValue])[],
  runId = TEST_RUN_ID,
): AgentsocketEvent[] {
  return items.map(([event, data], index) => ({
    seq: index + 1,
    epoch: TEST_EPOCH,
    id: `ev_${index + 1}`,
    event,
    runId,
    threadId: TEST_THREAD_ID,
    ts: 1_700_000_000_000 + index,
    critical:
      event === 'agent_started' || event === 'tool_completed' || event === 'agent_completed',
    data,
  }));
}

export const DEMO_ARGS = { query: 'weather in Paris', limit: 3 };
export const DEMO_RESULT = { answer: 'It is sunny in Paris today.' };

/** A demo-like run: started, thinking deltas, a tool call, text deltas, completed. */
export function demoRun(): AgentsocketEvent[] {
  return runEvents([
    ['agent_started', { agent: 'demo', input: { question: 'Weather in Paris?' } }],
    ['agent_thinking', { text: 'The user wants ' }],
    ['agent_thinking', { text: 'the weather; ' }],
    ['agent_thinking', { text: 'I will search.' }],
    ['tool_executing', { toolCallId: 'call-1', tool: 'search', args: DEMO_ARGS }],
    [
      'tool_completed',
      { toolCallId: 'call-1', tool: 'search', result: { hits: ['sunny'] }, durationMs: 12 },
    ],
    ['agent_text', { text: 'It is sunny ' }],
    ['agent_text', { text: 'in Paris ' }],
    ['agent_text', { text: 'today.' }],
    ['agent_completed', { status: 'succeeded', result: DEMO_RESULT }],
  ]);
}

/**
 * Adjacent deltas merged as the gateway's coalescing does: consecutive
 * `agent_thinking`, or `agent_text` of one messageId, become one frame with
 * the concatenated text, `seq` and `id` of the last and `seqFrom` of the first.
 */
export function coalesceDeltas(events: readonly AgentsocketEvent[]): AgentsocketEvent[] {
  const out: AgentsocketEvent[] = [];
  for (const event of events) {
    const previous = out.at(-1);
    const data = event.data as { text?: string; messageId?: string };
    const previousData = previous?.data as { text?: string; messageId?: string } | undefined;
    const mergeable =
      previous !== undefined &&
      (event.event === 'agent_thinking' || event.event === 'agent_text') &&
      previous.event === event.event &&
      previousData?.messageId === data.messageId;
    if (!mergeable) {
      out.push(event);
      continue;
    }
    const merged: AgentsocketEvent = {
      ...event,
      seqFrom: previous.seqFrom ?? previous.seq,
      data: { ...(previous.data as object), text: `${previousData?.text ?? ''}${data.text ?? ''}` },
    };
    out[out.length - 1] = merged;
  }
  return out;
}
