import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { agentRun } from '../../src/gateway/agent-run.js';
import type { PublishResult } from '../../src/gateway/gateway-types.js';
import {
  AGENT_EVENT_CRITICAL,
  MAX_AGENT_REF_LENGTH,
  defaultCritical,
  validateEventInput,
  type EventInput,
} from '../../src/protocol/index.js';

const MAX_DATA_BYTES = 256 * 1024;

function failure(input: unknown) {
  const validated = validateEventInput(input, MAX_DATA_BYTES);
  return validated.ok ? undefined : validated.failure;
}

describe('agent_text', () => {
  it('is an agent event, not critical by default', () => {
    expect(AGENT_EVENT_CRITICAL.agent_text).toBe(false);
    expect(defaultCritical('agent_text')).toBe(false);
  });

  it('takes {text, messageId?} with a runId', () => {
    const validated = validateEventInput(
      { event: 'agent_text', runId: 'r1', data: { text: 'Hi', messageId: 'm1' } },
      MAX_DATA_BYTES,
    );
    expect(validated).toMatchObject({
      ok: true,
      value: { critical: false, data: { text: 'Hi', messageId: 'm1' } },
    });
    expect(failure({ event: 'agent_text', runId: 'r1', data: { text: 'x' } })).toBeUndefined();
    expect(failure({ event: 'agent_text', data: { text: 'x' } })).toMatchObject({ field: 'runId' });
    expect(failure({ event: 'agent_text', runId: 'r1', data: { text: 1 } })).toMatchObject({
      field: 'data.text',
    });
    expect(
      failure({ event: 'agent_text', runId: 'r1', data: { text: 'x', messageId: 7 } }),
    ).toMatchObject({
      field: 'data.messageId',
      message: `data.messageId must be a string of 1-${MAX_AGENT_REF_LENGTH} characters`,
    });
  });

  it(`bounds toolCallId and messageId to ${MAX_AGENT_REF_LENGTH} characters (the grammar keeps them)`, () => {
    const long = 'x'.repeat(MAX_AGENT_REF_LENGTH + 1);
    const ok = 'x'.repeat(MAX_AGENT_REF_LENGTH);
    const tool = (toolCallId: string) => ({
      event: 'tool_executing',
      runId: 'r1',
      data: { toolCallId, tool: 't', args: {} },
    });
    expect(failure(tool(ok))).toBeUndefined();
    expect(failure(tool(long))).toMatchObject({ field: 'data.toolCallId' });
    expect(failure(tool(''))).toMatchObject({ field: 'data.toolCallId' });
    expect(
      failure({ event: 'tool_completed', runId: 'r1', data: { toolCallId: long, tool: 't' } }),
    ).toMatchObject({ field: 'data.toolCallId' });
    expect(
      failure({ event: 'agent_text', runId: 'r1', data: { text: '', messageId: long } }),
    ).toMatchObject({ field: 'data.messageId' });
  });

  it('agentRun().text() publishes agent_text of the run, with the messageId when given', async () => {
    const published: { userId: string; input: EventInput }[] = [];
    const gateway = {
      publish: async (userId: string, input: EventInput): Promise<PublishResult> => {
        published.push({ userId, input });
        const seq = published.length;
        return { seq, epoch: 'e', id: `ev_${seq}`, delivered: 0, duplicate: false };
      },
    };
    const run = agentRun(gateway, 'alice', 'r1', { threadId: 't1' });
    await run.text('The answer', 'm1');
    await run.text(' is 42.');
    expect(published).toEqual([
      {
        userId: 'alice',
        input: {
          runId: 'r1',
          threadId: 't1',
          event: 'agent_text',
          data: { text: 'The answer', messageId: 'm1' },
        },
      },
      {
        userId: 'alice',
        input: { runId: 'r1', threadId: 't1', event: 'agent_text', data: { text: ' is 42.' } },
      },
    ]);
    for (const { input } of published) expect(failure(input)).toBeUndefined();
  });
});

describe('src/runs', () => {
  it('imports only src/protocol and src/runs (the client SDK uses it in browsers)', () => {
    const dir = new URL('../../src/runs/', import.meta.url);
    const files = readdirSync(dir).filter((name) => name.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(3);
    for (const name of files) {
      const source = readFileSync(new URL(name, dir), 'utf8');
      for (const [, from] of source.matchAll(/from '([^']+)'/g)) {
        expect(from, `${name} imports ${from}`).toMatch(/^\.\.\/protocol\/|^\.\/[a-z-]+\.js$/);
      }
    }
  });
});
