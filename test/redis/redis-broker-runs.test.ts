/**
 * What only the Redis run store has (the shared cases are in
 * test/contract/run-store-contract.ts): its keys, the compaction of a long
 * run log into a checkpoint (also by two nodes at once, without losing an
 * event), and the deletion of a dropped run's keys.
 */
import { describe, expect, it } from 'vitest';
import { MemoryBroker } from '../../src/broker/memory-broker.js';
import { RUN_LOG_COMPACT_AT } from '../../src/broker/redis/runs.js';
import {
  encodeEvent,
  encodeEventFrame,
  type EncodedEvent,
} from '../../src/protocol/event-frame.js';
import { validateEventInput } from '../../src/protocol/event-input.js';
import type { EventFrame, JsonValue } from '../../src/protocol/frames.js';
import { foldRunFrame } from '../../src/runs/run-snapshot.js';
import type { RunSnapshot } from '../../src/runs/run-types.js';
import { RecordingHandlers } from '../helpers/recording-handlers.js';
import { redisServerMissing } from '../helpers/redis-server.js';
import { useRedisSuite } from '../helpers/redis-suite.js';
import { waitFor } from '../helpers/wait-for.js';

function runEvent(event: string, data: JsonValue, runId = 'r1'): EncodedEvent {
  const result = validateEventInput({ event, data, runId }, 256 * 1024);
  if (!result.ok) throw new Error(result.failure.message);
  return encodeEvent(result.value);
}

describe.skipIf(redisServerMissing)('RedisBroker runs', () => {
  const redis = useRedisSuite();

  it('compacts a long run log into a checkpoint, two nodes at once, losing no event', async () => {
    const a = await redis.node({ keyPrefix: 'runs1' });
    const b = await redis.node({ keyPrefix: 'runs1' });
    await a.broker.publish('u', runEvent('agent_started', { agent: 'a' }));
    let text = '';
    for (let i = 0; i < 400; i++) {
      // Both nodes publish (and so compact) the same run at once.
      text += `a${i} b${i} `;
      await Promise.all([
        a.broker.publish('u', runEvent('agent_thinking', { text: `a${i} ` })),
        b.broker.publish('u', runEvent('agent_thinking', { text: `b${i} ` })),
      ]);
    }
    const log = 'runs1:{u:u}:run:r1:log';
    await waitFor(async () => (await redis.admin.llen(log)) <= RUN_LOG_COMPACT_AT + 2, {
      what: 'the log to be compacted',
    });
    expect(await redis.admin.lindex(log, 0)).toMatch(/^\{"checkpoint":/);

    const read = await a.broker.readHistory('u', { kind: 'acked' });
    let expected: RunSnapshot | undefined;
    for (const event of read.events) {
      expected = foldRunFrame(
        expected,
        JSON.parse(encodeEventFrame(event)) as EventFrame,
        read.epoch,
      );
    }
    delete expected?.sizeBytes;
    const run = await b.broker.readRun('u', 'r1');
    expect(run).toEqual(expected);
    expect(run?.upToSeq).toBe(801);
    // Same text, whatever order the two nodes' deltas landed in: every one is there.
    const folded = (run?.parts[0] as { text: string }).text;
    expect(folded.split(' ').sort()).toEqual(text.split(' ').sort());
  });

  // Under the size cap: where the cap cuts depends on the snapshot's JSON
  // size, epoch included, and the engines draw epochs of different lengths
  // (each engine's cut is pinned against its own history in the contract).
  it('gives the same snapshot as the memory engine for the same events (past compaction)', async () => {
    const { broker: redisBroker } = await redis.node({ keyPrefix: 'runs3' });
    const memory = new MemoryBroker();
    await memory.start(new RecordingHandlers());
    const steps: [string, JsonValue][] = [['agent_started', { agent: 'a' }]];
    for (let i = 0; i < 300; i++) {
      steps.push(['agent_thinking', { text: `thought ${i} ${'é'.repeat(i % 50)} ` }]);
      if (i % 100 === 50) {
        steps.push(['tool_executing', { toolCallId: `c${i}`, tool: 'search', args: { i } }]);
        steps.push(['tool_completed', { toolCallId: `c${i}`, tool: 'search', result: [i] }]);
      }
      if (i % 70 === 0) steps.push(['agent_text', { text: `answer ${i}`, messageId: 'm' }]);
    }
    steps.push(['agent_completed', { status: 'succeeded', usage: { tokens: 300 } }]);
    for (const [event, data] of steps) {
      await redisBroker.publish('u', runEvent(event, data));
      await memory.publish('u', runEvent(event, data));
    }
    // Apart from where and when: the epoch and the timestamps.
    const normal = (run: RunSnapshot | null): unknown =>
      run === null ? null : { ...run, epoch: '', startedAt: 0, updatedAt: 0 };
    await waitFor(
      async () =>
        /^\{"checkpoint":/.test((await redis.admin.lindex('runs3:{u:u}:run:r1:log', 0)) ?? ''),
      { what: 'a checkpoint at the head of the log' },
    );
    const fromRedis = await redisBroker.readRun('u', 'r1');
    // Reasoning spans cut by the tool calls and the answer text.
    expect(fromRedis?.parts).toHaveLength(17);
    expect(normal(fromRedis)).toEqual(normal(await memory.readRun('u', 'r1')));
    expect((await redisBroker.listRuns('u', 5)).map(normal)).toEqual(
      (await memory.listRuns('u', 5)).map(normal),
    );
    await memory.close();
  });

  it('keeps the run keys with runTtlMs, and deletes a dropped run keys', async () => {
    const { broker } = await redis.node({ keyPrefix: 'runs2', maxRunsPerUser: 2 });
    await broker.publish('u', runEvent('agent_started', { agent: 'a' }, 'r1'));
    const ttl = await redis.admin.pttl('runs2:{u:u}:run:r1:log');
    expect(ttl).toBeGreaterThan(86_400_000 - 60_000);
    expect(await redis.admin.pttl('runs2:{u:u}:run:r1:state')).toBeGreaterThan(86_400_000 - 60_000);
    await broker.publish('u', runEvent('agent_started', { agent: 'a' }, 'r2'));
    await broker.publish('u', runEvent('agent_started', { agent: 'a' }, 'r3'));
    expect(await redis.admin.exists('runs2:{u:u}:run:r1:log', 'runs2:{u:u}:run:r1:state')).toBe(0);
    expect(await redis.admin.zrange('runs2:{u:u}:runs', 0, -1)).toEqual(['r2', 'r3']);
  });
});
