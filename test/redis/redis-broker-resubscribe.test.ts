/**
 * The subscriber link never stays half-subscribed: when the SUBSCRIBE after a
 * reconnect gets no answer (it times out while the link stays up), the broker
 * forces a reconnect and subscribes again, instead of waiting for a drop that
 * never comes.
 */
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisBroker } from '../../src/broker/redis/redis-broker.js';
import { encodeEvent, type EncodedEvent } from '../../src/protocol/event-frame.js';
import { validateEventInput } from '../../src/protocol/event-input.js';
import { createLogger } from '../../src/observability/logger.js';
import { LogCapture } from '../helpers/log-capture.js';
import { RecordingHandlers } from '../helpers/recording-handlers.js';
import { RedisServer, redisServerMissing } from '../helpers/redis-server.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { waitFor } from '../helpers/wait-for.js';

function note(i: number): EncodedEvent {
  const result = validateEventInput({ event: 'note', data: { i } }, 1024);
  if (!result.ok) throw new Error(result.failure.message);
  return encodeEvent(result.value);
}

describe.skipIf(redisServerMissing)('RedisBroker resubscribing', () => {
  const cleanups: (() => Promise<void>)[] = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('recovers when the SUBSCRIBE after a reconnect times out on a live link', async () => {
    const server = await RedisServer.start();
    cleanups.push(() => server.dispose());
    const proxy = await TcpProxy.start(server.port);
    cleanups.push(() => proxy.close());
    const admin = new Redis(server.url, { lazyConnect: true });
    await admin.connect();
    cleanups.push(async () => void admin.disconnect());
    const broker = new RedisBroker({
      url: `redis://127.0.0.1:${proxy.port}`,
      commandTimeoutMs: 300,
    });
    const handlers = new RecordingHandlers();
    await broker.start(handlers);
    cleanups.push(() => broker.close());
    await broker.subscribe('alice');
    expect(broker.health().healthy).toBe(true);

    // The next SUBSCRIBE goes unanswered; then the subscriber link is cut.
    proxy.dropClientData = /subscribe/i;
    await admin.client('KILL', 'TYPE', 'pubsub');
    await waitFor(() => proxy.dropped > 0, { what: 'a SUBSCRIBE swallowed' });
    proxy.dropClientData = undefined;

    await waitFor(() => broker.health().healthy, {
      timeoutMs: 10_000,
      what: 'the subscriber link subscribed again',
    });
    await broker.publish('alice', note(1));
    await waitFor(() => handlers.seqsOf('alice').length === 1, { what: 'the live event' });
    expect(handlers.seqsOf('alice')).toEqual([1]);
  });
  it('logs a failed UNSUBSCRIBE at warn, with its message only', async () => {
    const server = await RedisServer.start();
    cleanups.push(() => server.dispose());
    const proxy = await TcpProxy.start(server.port);
    cleanups.push(() => proxy.close());
    const capture = new LogCapture();
    const broker = new RedisBroker({
      url: `redis://127.0.0.1:${proxy.port}`,
      commandTimeoutMs: 300,
      logger: createLogger({ level: 'warn' }, capture),
    });
    await broker.start(new RecordingHandlers());
    cleanups.push(() => broker.close());
    await broker.subscribe('alice');
    proxy.dropClientData = /unsubscribe/i;
    await broker.unsubscribe('alice');
    const line = capture.text.split('\n').find((l) => l.includes('unsubscribe failed'));
    expect(line).toBeDefined();
    expect(JSON.parse(line as string)).toMatchObject({ level: 40, err: 'Command timed out' });
  });
});
