/**
 * Runs in flight across a Redis crash that lost writes (RDB): the stream
 * moves to a new epoch (RUN_GUARD), and the grammar states the crash lost or
 * rolled back are doubted (`run-trust-lua.ts`): the rest of each run is
 * accepted and delivered, its violations reported as in warn mode (the
 * gateway answers 202 and counts them), instead of a 409 for every event.
 * Runs started after the move are checked strictly. Real `redis-server`
 * processes, SIGKILLed and restarted on the same port and dir.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import type { PublishOutcome } from '../../src/broker/broker.js';
import { RedisBroker } from '../../src/broker/redis/redis-broker.js';
import { RunGrammarError } from '../../src/errors.js';
import { encodeEvent, type EncodedEvent } from '../../src/protocol/event-frame.js';
import { validateEventInput } from '../../src/protocol/event-input.js';
import type { JsonValue } from '../../src/protocol/frames.js';
import { RecordingHandlers } from '../helpers/recording-handlers.js';
import { RedisServer, redisServerMissing } from '../helpers/redis-server.js';
import { publishRetrying } from '../helpers/publish-retrying.js';
import { waitFor } from '../helpers/wait-for.js';

function runEvent(runId: string, id: string, event: string, data: JsonValue): EncodedEvent {
  const result = validateEventInput({ event, data, runId, id }, 64 * 1024);
  if (!result.ok) throw new Error(result.failure.message);
  return encodeEvent(result.value);
}

describe.skipIf(redisServerMissing)('RedisBroker: runs in flight across a Redis crash', () => {
  const cleanups: (() => Promise<void>)[] = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function node(url: string): Promise<{ broker: RedisBroker; handlers: RecordingHandlers }> {
    const broker = new RedisBroker({ url, commandTimeoutMs: 1_000 });
    const handlers = new RecordingHandlers();
    await broker.start(handlers);
    cleanups.push(() => broker.close());
    return { broker, handlers };
  }

  it('accepts the rest of runs the crash lost or rolled back, and still refuses runs started after it', async () => {
    const redis = await RedisServer.start({ appendOnly: false });
    cleanups.push(() => redis.dispose());
    const a = await node(redis.url);
    const b = await node(redis.url);
    const control = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    control.on('error', () => undefined); // the server is killed under it on purpose
    await control.connect();
    cleanups.push(async () => void control.disconnect());
    const alice = `run-loss-${randomBytes(4).toString('hex')}`;
    await a.broker.subscribe(alice);

    // r2 starts before the snapshot with c1 open: the crash rolls its state back.
    const before = await publishRetrying(
      b.broker,
      alice,
      runEvent('r2', 'r2-1', 'agent_started', { agent: 'a' }),
    );
    await publishRetrying(
      b.broker,
      alice,
      runEvent('r2', 'r2-2', 'tool_executing', { toolCallId: 'c1', tool: 't', args: {} }),
    );
    await control.save();
    // Acknowledged, then lost: r2 completes c1 and opens c2; r1 starts with c3 open.
    await publishRetrying(
      b.broker,
      alice,
      runEvent('r2', 'r2-3', 'tool_completed', { toolCallId: 'c1', tool: 't', result: 1 }),
    );
    await publishRetrying(
      b.broker,
      alice,
      runEvent('r2', 'r2-4', 'tool_executing', { toolCallId: 'c2', tool: 't', args: {} }),
    );
    await publishRetrying(b.broker, alice, runEvent('r1', 'r1-1', 'agent_started', { agent: 'a' }));
    await publishRetrying(
      b.broker,
      alice,
      runEvent('r1', 'r1-2', 'tool_executing', { toolCallId: 'c3', tool: 't', args: {} }),
    );

    await redis.kill();
    await redis.restart();

    // r1: its state is gone. Each event of the rest of the run is accepted.
    const r1 = [
      runEvent('r1', 'r1-3', 'tool_completed', { toolCallId: 'c3', tool: 't', result: 1 }),
      runEvent('r1', 'r1-4', 'agent_text', { text: 'done' }),
      runEvent('r1', 'r1-5', 'agent_completed', { status: 'succeeded' }),
    ];
    const r1Outcomes: PublishOutcome[] = [];
    for (const event of r1) r1Outcomes.push(await publishRetrying(b.broker, alice, event));
    expect(r1Outcomes[0]!.epoch).not.toBe(before.epoch);
    expect(r1Outcomes.map((o) => o.duplicate)).toEqual([false, false, false]);
    // Reported as in warn mode: the run had no state to check against.
    expect(r1Outcomes.map((o) => o.runGrammarViolation?.code)).toEqual([
      'run_not_started',
      undefined,
      undefined,
    ]);

    // r2: its state says c1 open; in truth c1 was completed and c2 is open.
    const r2 = [
      runEvent('r2', 'r2-5', 'tool_completed', { toolCallId: 'c2', tool: 't', result: 1 }),
      runEvent('r2', 'r2-6', 'agent_thinking', { text: 'then' }),
      runEvent('r2', 'r2-7', 'agent_completed', { status: 'succeeded' }),
    ];
    const r2Outcomes: PublishOutcome[] = [];
    for (const event of r2) r2Outcomes.push(await publishRetrying(b.broker, alice, event));
    expect(r2Outcomes.map((o) => o.runGrammarViolation?.code)).toEqual([
      'tool_call_unknown',
      undefined,
      'tool_calls_open',
    ]);
    // The rebuilt states are checked again on what is certain: both runs ended.
    for (const [runId, id] of [
      ['r1', 'r1-6'],
      ['r2', 'r2-8'],
    ] as const) {
      await expect(
        b.broker.publish(alice, runEvent(runId, id, 'agent_text', { text: 'late' })),
      ).rejects.toMatchObject({ code: 'run_finished' });
    }

    // Every accepted event is delivered: node a was told to re-read the
    // moved stream (onResync), and the history holds them in order.
    await waitFor(() => a.handlers.resyncs.includes(alice), { what: 'onResync on node a' });
    const read = await a.broker.readHistory(alice, { kind: 'acked' });
    const ids = read.events.map((e) => e.id);
    expect(ids.filter((id) => /^r[12]-[3-9]$/.test(id))).toEqual([...r1, ...r2].map((e) => e.id));

    // A run started after the move is strict: a violation is refused (409).
    await publishRetrying(b.broker, alice, runEvent('r3', 'r3-1', 'agent_started', { agent: 'a' }));
    await publishRetrying(
      b.broker,
      alice,
      runEvent('r3', 'r3-2', 'tool_executing', { toolCallId: 'c4', tool: 't', args: {} }),
    );
    const refused = b.broker.publish(
      alice,
      runEvent('r3', 'r3-3', 'agent_completed', { status: 'succeeded' }),
    );
    await expect(refused).rejects.toBeInstanceOf(RunGrammarError);
    await expect(refused).rejects.toMatchObject({ code: 'tool_calls_open' });
    // A run with no state cannot be told from one whose state the crash lost
    // while a lost state could still be alive (runTtlMs since the move): it
    // warns; past that, it is refused again. A node with a short runTtlMs
    // shows both.
    await expect(
      b.broker.publish(alice, runEvent('r4', 'r4-1', 'agent_text', { text: 'x' })),
    ).resolves.toMatchObject({ runGrammarViolation: { code: 'run_not_started' } });
    const short = new RedisBroker({ url: redis.url, commandTimeoutMs: 1_000, runTtlMs: 1_000 });
    await short.start(new RecordingHandlers());
    cleanups.push(() => short.close());
    let attempt = 0;
    const late = await waitFor(
      async () => {
        attempt += 1;
        const event = runEvent(`r5-${attempt}`, `r5-${attempt}`, 'agent_text', { text: 'x' });
        try {
          await short.publish(alice, event);
          return undefined;
        } catch (error) {
          return error;
        }
      },
      { timeoutMs: 10_000, intervalMs: 100, what: 'a run without a state to be refused' },
    );
    expect(late).toMatchObject({ code: 'run_not_started' });
  });
});
