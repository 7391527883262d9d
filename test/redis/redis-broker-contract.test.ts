/**
 * RedisBroker against the one broker contract suite, with the cross-node cases:
 * every broker of the factory is a node of one Redis.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import { RedisBroker } from '../../src/broker/redis/redis-broker.js';
import { describeBrokerContract } from '../contract/broker-contract.js';
import { RedisServer, redisServerMissing } from '../helpers/redis-server.js';

describe.skipIf(redisServerMissing)('RedisBroker', () => {
  let server: RedisServer;

  beforeAll(async () => {
    server = await RedisServer.start();
  });

  afterAll(async () => {
    await server?.dispose();
  });

  describeBrokerContract(
    'redis',
    async (options) => ({
      broker: new RedisBroker({ url: server.url, ...options }),
      cleanup: async () => {},
    }),
    { sharedAcrossInstances: true },
  );
});
