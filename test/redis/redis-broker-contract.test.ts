/**
 * RedisBroker against the one broker contract suite, with the cross-node cases:
 * every broker of the factory is a node of one Redis.
 */
import { describe } from 'vitest';
import { RedisBroker } from '../../src/broker/redis/redis-broker.js';
import { describeBrokerContract } from '../contract/broker-contract.js';
import { redisServerMissing } from '../helpers/redis-server.js';
import { useRedisSuite } from '../helpers/redis-suite.js';

describe.skipIf(redisServerMissing)('RedisBroker', () => {
  const redis = useRedisSuite();

  describeBrokerContract(
    'redis',
    async (options) => ({
      broker: new RedisBroker({ url: redis.server.url, ...options }),
      cleanup: async () => {},
    }),
    { sharedAcrossInstances: true },
  );
});
