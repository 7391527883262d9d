/**
 * RedisBroker on a Redis Cluster (3 masters + 3 replicas) against the one
 * broker contract suite (run store included), with the cross-node cases:
 * every broker of the factory is a node of the one cluster.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import { RedisBroker } from '../../src/broker/redis/redis-broker.js';
import { describeBrokerContract } from '../contract/broker-contract.js';
import { RedisCluster } from '../helpers/redis-cluster.js';
import { redisServerMissing } from '../helpers/redis-server.js';

describe.skipIf(redisServerMissing)('RedisBroker on Redis Cluster', () => {
  let cluster: RedisCluster | undefined;
  beforeAll(async () => {
    cluster = await RedisCluster.start();
  }, 60_000);
  afterAll(async () => {
    await cluster?.dispose();
  });

  describeBrokerContract(
    'redis-cluster',
    async (options) => ({
      broker: new RedisBroker({ cluster: cluster!.urls.slice(0, 2), ...options }),
      cleanup: async () => {},
    }),
    { sharedAcrossInstances: true },
  );
});
