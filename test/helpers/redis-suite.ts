/**
 * The boot block of the Redis test files, once: a private `redis-server` for
 * the enclosing `describe` (started before its first test, disposed after its
 * last), an admin client on it, and Redis broker nodes that are closed after
 * each test. Call it inside `describe.skipIf(redisServerMissing)(…)`.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { RedisBroker, type RedisBrokerOptions } from '../../src/broker/redis/redis-broker.js';
import { RecordingHandlers } from './recording-handlers.js';
import { RedisServer } from './redis-server.js';

export interface RedisSuite {
  /** The suite's server (set once the suite started). */
  readonly server: RedisServer;
  /** A plain client on the server, for looking at keys. */
  readonly admin: Redis;
  /** A started broker node on the server, closed after the test. */
  node(
    options?: Partial<RedisBrokerOptions>,
  ): Promise<{ broker: RedisBroker; handlers: RecordingHandlers }>;
}

export function useRedisSuite(): RedisSuite {
  let server: RedisServer | undefined;
  let admin: Redis | undefined;
  const brokers: RedisBroker[] = [];

  beforeAll(async () => {
    server = await RedisServer.start();
    admin = new Redis(server.url, { lazyConnect: true });
    await admin.connect();
  });
  afterEach(async () => {
    for (const broker of brokers.splice(0)) await broker.close();
  });
  afterAll(async () => {
    admin?.disconnect();
    await server?.dispose();
  });

  return {
    get server(): RedisServer {
      if (server === undefined) throw new Error('useRedisSuite: the suite has not started');
      return server;
    },
    get admin(): Redis {
      if (admin === undefined) throw new Error('useRedisSuite: the suite has not started');
      return admin;
    },
    async node(options = {}) {
      const broker = new RedisBroker({ url: this.server.url, ...options });
      const handlers = new RecordingHandlers();
      await broker.start(handlers);
      brokers.push(broker);
      return { broker, handlers };
    },
  };
}
