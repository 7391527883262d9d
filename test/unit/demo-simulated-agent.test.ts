import { describe, expect, it } from 'vitest';
import {
  SIMULATED_AGENT_NAME,
  SIMULATED_ANSWER_MESSAGE_ID,
  SIMULATED_TOOL_NAME,
  runSimulatedAgent,
} from '../../src/demo/simulated-agent.js';
import { AGENT_EVENT_NAMES, validateEventInput } from '../../src/protocol/index.js';
import type { EventInput } from '../../src/protocol/index.js';

const MAX_DATA_BYTES = 256 * 1024;

/** A publish that keeps what it was given, in order. */
function recorder(onPublish?: (count: number) => void) {
  const published: { userId: string; input: EventInput }[] = [];
  const publish = async (userId: string, input: EventInput) => {
    published.push({ userId, input });
    onPublish?.(published.length);
    return { seq: published.length };
  };
  return { published, publish };
}

/** Consecutive repeats collapsed: the shape of the run. */
function phases(names: string[]): string[] {
  return names.filter((name, i) => name !== names[i - 1]);
}

describe('runSimulatedAgent', () => {
  it('streams the five agent events in order, with the run id set and valid data', async () => {
    const { published, publish } = recorder();
    const result = await runSimulatedAgent(publish, 'alice', 'What is a resume cursor?', {
      tokenDelayMs: 0,
    });
    expect(result.status).toBe('succeeded');
    const names = published.map((p) => p.input.event);
    // Reasoning, one tool call, then the answer streamed as `agent_text` deltas.
    expect(phases(names)).toEqual([
      'agent_started',
      'agent_thinking',
      'tool_executing',
      'tool_completed',
      'agent_text',
      'agent_completed',
    ]);
    expect([...new Set(names)].sort()).toEqual([...AGENT_EVENT_NAMES].sort());
    expect(names.filter((n) => n === 'agent_thinking').length).toBeGreaterThanOrEqual(5);
    expect(names.filter((n) => n === 'agent_text').length).toBeGreaterThanOrEqual(5);
    for (const { userId, input } of published) {
      expect(userId).toBe('alice');
      expect(input.runId).toBe(result.runId);
      const validated = validateEventInput(input, MAX_DATA_BYTES);
      expect(validated.ok, JSON.stringify(validated)).toBe(true);
    }
  });

  it('carries a realistic run: the prompt, reasoning deltas, one tool call and the answer', async () => {
    const { published, publish } = recorder();
    await runSimulatedAgent(publish, 'bob', '  How do   acks work? ', {
      tokenDelayMs: 0,
      runId: 'r-42',
      threadId: 't-1',
    });
    const byName = (name: string) => published.filter((p) => p.input.event === name);
    expect(byName('agent_started')[0]!.input.data).toEqual({
      agent: SIMULATED_AGENT_NAME,
      input: 'How do acks work?',
    });
    const thought = byName('agent_thinking')
      .map((p) => (p.input.data as { text: string }).text)
      .join('');
    expect(thought).toContain('The user asks: "How do acks work?"');
    const call = byName('tool_executing')[0]!.input.data as Record<string, unknown>;
    const done = byName('tool_completed')[0]!.input.data as Record<string, unknown>;
    expect(call).toMatchObject({ tool: SIMULATED_TOOL_NAME, args: { query: 'How do acks work?' } });
    expect(done.toolCallId).toBe(call.toolCallId);
    expect((done.result as { hits: unknown[] }).hits).toHaveLength(3);
    const answer = byName('agent_text').map(
      (p) => p.input.data as { text: string; messageId: string },
    );
    expect(answer.every((d) => d.messageId === SIMULATED_ANSWER_MESSAGE_ID)).toBe(true);
    expect(answer.map((d) => d.text).join('')).toMatch(
      /^Here is what I found about "How do acks work\?": 3 passages matched\. /,
    );
    const completed = byName('agent_completed')[0]!.input.data as Record<string, unknown>;
    expect(completed.status).toBe('succeeded');
    expect(completed.usage).toMatchObject({ inputTokens: 4 });
    expect(published.every((p) => p.input.runId === 'r-42' && p.input.threadId === 't-1')).toBe(
      true,
    );
  });

  it('ends with agent_completed "cancelled" and no tool call when aborted mid-thought', async () => {
    const controller = new AbortController();
    const { published, publish } = recorder((count) => {
      if (count === 3) controller.abort();
    });
    const result = await runSimulatedAgent(publish, 'alice', 'hello', {
      tokenDelayMs: 0,
      signal: controller.signal,
    });
    expect(result.status).toBe('cancelled');
    const names = published.map((p) => p.input.event);
    expect(names).toEqual(['agent_started', 'agent_thinking', 'agent_thinking', 'agent_completed']);
    expect(published.at(-1)!.input.data).toEqual({ status: 'cancelled' });
  });

  it('rejects when a publish fails, and publishes nothing after it', async () => {
    const published: string[] = [];
    const publish = async (_userId: string, input: EventInput) => {
      if (published.length === 2) throw new Error('broker down');
      published.push(input.event);
      return {};
    };
    await expect(runSimulatedAgent(publish, 'alice', 'hi', { tokenDelayMs: 0 })).rejects.toThrow(
      'broker down',
    );
    expect(published).toEqual(['agent_started', 'agent_thinking']);
  });

  it('ends a run cancelled mid-answer with agent_completed "cancelled" after its text deltas', async () => {
    const controller = new AbortController();
    const { published, publish } = recorder((count) => {
      const last = published[count - 1]!;
      if (last.input.event === 'agent_text') controller.abort();
    });
    const result = await runSimulatedAgent(publish, 'alice', 'hello', {
      tokenDelayMs: 0,
      signal: controller.signal,
    });
    expect(result.status).toBe('cancelled');
    const names = published.map((p) => p.input.event);
    expect(names.slice(-2)).toEqual(['agent_text', 'agent_completed']);
    expect(published.at(-1)!.input.data).toEqual({ status: 'cancelled' });
  });
});
