/**
 * `POST /v1/ag-ui/runs` on the Redis engine: two gateway nodes on one private
 * `redis-server`. A run published on one node streams to a stock HttpAgent on
 * the other; a stream cut on one node resumes with `Last-Event-ID` on the
 * other, from the run as the engine holds it (history and run store).
 */
import { HttpAgent } from '@ag-ui/client';
import type { BaseEvent, Message } from '@ag-ui/core';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBroker } from '../../src/broker/redis/redis-broker.js';
import type { JsonValue } from '../../src/protocol/frames.js';
import {
  AGUI_THREAD_ID,
  cuttingFetch,
  startAguiGateway,
  type AguiGateway,
} from '../helpers/agui-gateway.js';
import { RedisServer, redisServerMissing } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/wait-for.js';

const STEPS: readonly (readonly [string, JsonValue])[] = [
  ['agent_thinking', { text: 'Looking ' }],
  ['agent_thinking', { text: 'it up.' }],
  ['tool_executing', { toolCallId: 'c1', tool: 'search', args: { q: 'x' } }],
  ['tool_completed', { toolCallId: 'c1', tool: 'search', result: 'found' }],
  ['agent_text', { text: 'Here ' }],
  ['agent_text', { text: 'it is.' }],
  ['agent_completed', { status: 'succeeded', result: { ok: true } }],
];

function withoutMetadata(messages: readonly Message[]): unknown[] {
  return JSON.parse(
    JSON.stringify(messages, (key, value: unknown) => (key === 'metadata' ? undefined : value)),
  ) as unknown[];
}

describe.skipIf(redisServerMissing)('AG-UI streams on the Redis engine', () => {
  let redis: RedisServer;
  const brokers: RedisBroker[] = [];
  const nodes: AguiGateway[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
    for (const nodeId of ['a', 'b']) {
      const broker = new RedisBroker({ url: redis.url, nodeId });
      brokers.push(broker);
      nodes.push(await startAguiGateway({ broker, agui: { coalesceWindowMs: 0 } }));
    }
  });
  afterAll(async () => {
    for (const node of nodes) await node.close();
    for (const broker of brokers) await broker.close();
    await redis?.dispose();
  });

  it('streams on one node what another publishes, and resumes a cut stream on the other node', async () => {
    const [a, b] = nodes as [AguiGateway, AguiGateway];
    const runId = 'run-r';
    await a.publishRun('rita', runId, [['agent_started', { agent: 'demo' }]]);
    // The reference: a whole stream on b.
    const tokenB = await b.token('rita');
    let cut = (event: BaseEvent): boolean => event.type === 'TOOL_CALL_START';
    let lastCursor = '';
    const onB = new HttpAgent({
      url: b.runsUrl,
      threadId: AGUI_THREAD_ID,
      headers: { Authorization: `Bearer ${tokenB}` },
      fetch: cuttingFetch((event) => cut(event)),
    });
    let started = false;
    const first = onB.runAgent(
      { runId },
      {
        onRunStartedEvent: () => void (started = true),
        onEvent: ({ event }) => {
          const meta = event.metadata as { agentsocket?: { cursor?: string } } | undefined;
          lastCursor = meta?.agentsocket?.cursor ?? lastCursor;
        },
      },
    );
    await waitFor(() => started, { what: 'the agent on b started' });
    await a.publishRun('rita', runId, STEPS);
    expect((await first).result).toBeUndefined();
    expect(lastCursor).toMatch(/:\d+\.\d+$/);

    // Resumed on node a, from the cursor b's stream gave.
    cut = () => false;
    const onA = onB.clone() as HttpAgent;
    onA.url = a.runsUrl;
    onA.headers = {
      Authorization: `Bearer ${await a.token('rita')}`,
      'Last-Event-ID': lastCursor,
    };
    const resumed = await onA.runAgent({ runId });
    expect(resumed.result).toEqual({ ok: true });

    const fresh = new HttpAgent({
      url: a.runsUrl,
      threadId: AGUI_THREAD_ID,
      headers: { Authorization: `Bearer ${await a.token('rita')}` },
    });
    await fresh.runAgent({ runId });
    expect(withoutMetadata(onA.messages)).toEqual(withoutMetadata(fresh.messages));
    expect(withoutMetadata(fresh.messages)).toEqual([
      { id: `${runId}:r2`, role: 'reasoning', content: 'Looking it up.' },
      {
        id: `${runId}:call:c1`,
        role: 'assistant',
        toolCalls: [
          { id: 'c1', type: 'function', function: { name: 'search', arguments: '{"q":"x"}' } },
        ],
      },
      { id: `${runId}:result:c1`, role: 'tool', toolCallId: 'c1', content: 'found' },
      { id: `${runId}:m6`, role: 'assistant', content: 'Here it is.' },
    ]);
  });

  it('ends a live stream with RUN_ERROR history_lost when the stream it follows is lost', async () => {
    const lossy = new RedisBroker({ url: redis.url, nodeId: 'c' });
    brokers.push(lossy);
    // Grammar off: after the data loss the run's next event is accepted as is.
    const node = await startAguiGateway({ broker: lossy, runGrammar: 'off' });
    nodes.push(node);
    await node.publishRun('lost', 'run-l', [
      ['agent_started', { agent: 'demo' }],
      ['agent_text', { text: 'Hel' }],
    ]);
    const answer = fetch(node.runsUrl, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await node.token('lost')}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ runId: 'run-l' }),
    });
    // Headers arrive once the stream has read the run and follows it: a flush
    // before that would make the run unknown (404), not a lost stream.
    const response = await answer;
    expect(response.status).toBe(200);
    const admin = new Redis(redis.url);
    try {
      await admin.flushall();
    } finally {
      admin.disconnect();
    }
    await node.publishRun('lost', 'run-l', [['agent_text', { text: 'lo' }]]);
    const text = await response.text();
    const last = JSON.parse([...text.matchAll(/^data: (.*)$/gm)].at(-1)?.[1] ?? 'null') as {
      type: string;
      code: string;
      metadata: { agentsocket: { interrupted: string; cursor: string } };
    };
    expect(last).toMatchObject({
      type: 'RUN_ERROR',
      code: 'agentsocket.stream_interrupted',
      metadata: { agentsocket: { interrupted: 'history_lost' } },
    });
    expect(text).not.toContain('"delta":"lo"');
  });
});
