/**
 * The run grammar in process (protocol 1.1): `gateway.publish` and
 * `agentRun()` throw `RunGrammarError` with the rule's code in `strict` mode
 * (nothing sent), `warn` publishes and counts the violation, `off` publishes
 * without counting.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RunGrammarError } from '../../src/errors.js';
import { agentRun } from '../../src/gateway/agent-run.js';
import type { RunGrammarMode } from '../../src/broker/stream-engine.js';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';

let h: Harness | undefined;
afterEach(async () => h?.close());

async function violations(harness: Harness, rule: string): Promise<number> {
  const metric = await harness.gateway.metrics.registry.getSingleMetricAsString(
    'agentsocket_run_grammar_violations_total',
  );
  const line = metric
    .split('\n')
    .find((l) => l.startsWith(`agentsocket_run_grammar_violations_total{rule="${rule}"}`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

async function start(runGrammar?: RunGrammarMode): Promise<Harness> {
  h = await startGateway(runGrammar === undefined ? {} : { runGrammar });
  return h;
}

describe('the run grammar in process', () => {
  it('strict (the default): agentRun throws RunGrammarError with the code; nothing is sent', async () => {
    const harness = await start();
    const client = await harness.connect('alice', { autoAck: true });
    const run = agentRun(harness.gateway, 'alice', 'r1');
    await run.started({ agent: 'a' });
    const error = await run.toolCompleted({ toolCallId: 'nope', tool: 't' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RunGrammarError);
    expect(error).toMatchObject({ code: 'tool_call_unknown', status: 409 });
    expect(await violations(harness, 'tool_call_unknown')).toBe(1);
    await run.completed({ status: 'succeeded' });
    const events = await client.waitForEvents(2);
    expect(events.map((e) => [e.seq, e.event])).toEqual([
      [1, 'agent_started'],
      [2, 'agent_completed'],
    ]);
    await expect(run.thinking('after the end')).rejects.toMatchObject({ code: 'run_finished' });
  });

  it('warn: publishes the violating event, delivers it and counts it', async () => {
    const harness = await start('warn');
    const client = await harness.connect('bob', { autoAck: true });
    const answer = await harness.gateway.publish('bob', {
      event: 'agent_thinking',
      runId: 'r1',
      data: { text: 'no start' },
    });
    expect(answer).toMatchObject({ seq: 1, delivered: 1 });
    expect((await client.waitForEvents(1))[0]).toMatchObject({ event: 'agent_thinking' });
    expect(await violations(harness, 'run_not_started')).toBe(1);
  });

  it('off: publishes the violating event without counting it', async () => {
    const harness = await start('off');
    const answer = await harness.gateway.publish('carol', {
      event: 'agent_completed',
      runId: 'r1',
      data: { status: 'succeeded' },
    });
    expect(answer.seq).toBe(1);
    expect(await violations(harness, 'run_not_started')).toBe(0);
    expect((await harness.gateway.readRun('carol', 'r1'))?.status).toBe('succeeded');
  });

  it('refuses an unknown mode when the gateway is created', async () => {
    await expect(start('loose' as RunGrammarMode)).rejects.toThrow(
      'option runGrammar must be one of strict, warn, off',
    );
  });
});
