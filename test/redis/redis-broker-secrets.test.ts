/**
 * The Redis password never reaches a log: ioredis reply errors carry the
 * command with its arguments (AUTH's is the password), and the broker logs
 * error messages only. The logger is at debug, so every line the broker can
 * write is seen.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisBroker } from '../../src/broker/redis/redis-broker.js';
import { createLogger } from '../../src/observability/logger.js';
import { LogCapture } from '../helpers/log-capture.js';
import { RecordingHandlers } from '../helpers/recording-handlers.js';
import { RedisServer, redisServerMissing } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/wait-for.js';

describe.skipIf(redisServerMissing)('RedisBroker and the Redis password', () => {
  const cleanups: (() => Promise<void>)[] = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('logs a refused AUTH without the password given', async () => {
    const server = await RedisServer.start({
      requirePass: `right-${randomBytes(8).toString('hex')}`,
    });
    cleanups.push(() => server.dispose());
    const wrong = `wrong-${randomBytes(8).toString('hex')}`;
    const capture = new LogCapture();
    const broker = new RedisBroker({
      url: `redis://:${wrong}@127.0.0.1:${server.port}`,
      commandTimeoutMs: 500,
      logger: createLogger({ level: 'debug' }, capture),
    });
    cleanups.push(() => broker.close());
    // Before the fix start rejected here; either way the refusal is logged.
    await broker.start(new RecordingHandlers()).catch(() => undefined);
    await waitFor(() => capture.text.includes('WRONGPASS'), { what: 'the refused AUTH logged' });
    expect(broker.health().healthy).toBe(false);
    expect(capture.text).not.toContain(wrong);
    // The refusal is a warning an operator sees, not a debug line.
    const line = capture.text.split('\n').find((l) => l.includes('redis broker: link error'));
    expect(JSON.parse(line ?? '{}')).toMatchObject({
      level: 40,
      err: expect.stringMatching(/^WRONGPASS/),
    });
  });
});
