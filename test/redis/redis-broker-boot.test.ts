/**
 * A node that boots while Redis is down recovers by itself once Redis comes
 * up: `RedisBroker.start` never gives up on an unreachable engine (its links
 * keep reconnecting, its steps reject with `BrokerUnavailableError`, `health`
 * says why), and the gateway on it turns ready and publishes without a restart.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerUnavailableError } from '../../src/broker/broker.js';
import { RedisBroker } from '../../src/broker/redis/redis-broker.js';
import { encodeEvent, type EncodedEvent } from '../../src/protocol/event-frame.js';
import { validateEventInput } from '../../src/protocol/event-input.js';
import { startGateway } from '../helpers/gateway-harness.js';
import { RecordingHandlers } from '../helpers/recording-handlers.js';
import { freePort, RedisServer, redisServerMissing } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/wait-for.js';

function note(i: number): EncodedEvent {
  const result = validateEventInput({ event: 'note', data: { i } }, 1024);
  if (!result.ok) throw new Error(result.failure.message);
  return encodeEvent(result.value);
}

describe.skipIf(redisServerMissing)('RedisBroker booted before Redis', () => {
  const cleanups: (() => Promise<void>)[] = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function redisLater(port: number): Promise<RedisServer> {
    const server = await RedisServer.start({ port });
    cleanups.push(() => server.dispose());
    return server;
  }

  it('starts without Redis, refuses steps meanwhile, and serves once Redis is up', async () => {
    const port = await freePort();
    const broker = new RedisBroker({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 500 });
    cleanups.push(() => broker.close());
    const handlers = new RecordingHandlers();
    await broker.start(handlers);
    expect(broker.health().healthy).toBe(false);
    await expect(broker.publish('alice', note(0))).rejects.toBeInstanceOf(BrokerUnavailableError);

    await redisLater(port);
    await waitFor(() => broker.health().healthy, { timeoutMs: 15_000, what: 'a healthy broker' });
    await broker.subscribe('alice');
    const outcome = await broker.publish('alice', note(1));
    expect(outcome).toMatchObject({ seq: 1, duplicate: false });
    await waitFor(() => handlers.seqsOf('alice').length === 1, { what: 'the live event' });
    // The shared channels were subscribed on the late connection too.
    await broker.broadcast('{"type":"broadcast"}');
    await waitFor(() => handlers.broadcasts.length === 1, { what: 'the broadcast' });
    expect(handlers.healthChanges.at(-1)).toEqual({ healthy: true });
  });

  it('a gateway booted before Redis turns ready and publishes once Redis is up', async () => {
    const port = await freePort();
    const broker = new RedisBroker({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 500 });
    cleanups.push(() => broker.close());
    const harness = await startGateway({ broker });
    cleanups.push(() => harness.close());
    expect(harness.gateway.readiness().ready).toBe(false);

    await redisLater(port);
    await waitFor(() => harness.gateway.readiness().ready, {
      timeoutMs: 15_000,
      what: 'a ready gateway',
    });
    const result = await harness.gateway.publish('alice', { event: 'note', data: { i: 1 } });
    expect(result).toMatchObject({ seq: 1 });
  });
});
