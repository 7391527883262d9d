/**
 * The Redis Cluster options, checked up front: `--redis-cluster` and
 * `RedisBroker({ cluster })` refuse what cannot work with a message naming
 * the option (and never repeating a URL, which may hold a password), and the
 * slot rule the engine routes by is Redis Cluster's own.
 */
import { describe, expect, it } from 'vitest';
import { parseClusterSlots, slotOf } from '../../src/broker/redis/cluster-slots.js';
import { RedisBroker } from '../../src/broker/redis/redis-broker.js';
import { SHARD_COUNTERS_LIMIT, ShardCounters } from '../../src/broker/redis/shard-counters.js';
import { OptionError } from '../../src/options/validators.js';
import { parseServeConfig } from '../../src/server/config.js';

const BASE = { jwtSecret: 's'.repeat(32), apiKey: ['k'.repeat(16)] };

describe('Redis Cluster options', () => {
  it('--redis-cluster reads a comma-separated list of seed URLs', () => {
    const config = parseServeConfig(
      { ...BASE, redisCluster: ['redis://10.0.0.1:7000, redis://10.0.0.2:7000'] },
      {},
    );
    expect(config.redisCluster).toEqual(['redis://10.0.0.1:7000', 'redis://10.0.0.2:7000']);
    expect(config.redisUrl).toBeNull();
    const fromEnv = parseServeConfig(BASE, {
      AGENTSOCKET_REDIS_CLUSTER: 'redis://h:1,redis://h:2',
    });
    expect(fromEnv.redisCluster).toEqual(['redis://h:1', 'redis://h:2']);
  });

  it('--redis and --redis-cluster together, or a URL that is not redis://, are refused by name', () => {
    const refused = (flags: Record<string, unknown>): string => {
      try {
        parseServeConfig({ ...BASE, ...flags }, {});
      } catch (error) {
        expect(error).toBeInstanceOf(OptionError);
        return (error as Error).message;
      }
      throw new Error('expected an OptionError');
    };
    expect(refused({ redis: 'redis://h:1', redisCluster: ['redis://h:2'] })).toBe(
      '--redis and --redis-cluster cannot be used together: give one',
    );
    const bad = refused({ redisCluster: ['redis://h:1,http://user:hunter2@h:2'] });
    expect(bad).toContain('--redis-cluster');
    expect(bad).not.toContain('hunter2');
  });

  it('RedisBroker takes url or cluster, not both, and cluster as a list of redis URLs', () => {
    expect(() => new RedisBroker({ url: 'redis://h:1', cluster: ['redis://h:2'] })).toThrow(
      /url .* or cluster .*not both/,
    );
    expect(() => new RedisBroker({ cluster: [] })).toThrow(/cluster must be a non-empty list/);
    expect(() => new RedisBroker({ cluster: ['http://h:1'] })).toThrow(/cluster must be/);
    expect(() => new RedisBroker({})).toThrow(/url must start with redis:\/\//);
    expect(() => new RedisBroker({ cluster: ['redis://h:1/2'] })).toThrow(/only database 0/);
  });

  it('routes by Redis Cluster key slots, hash tags included', () => {
    // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
    expect(slotOf('123456789')).toBe(0x31c3 % 16_384);
    expect(slotOf('foo')).toBe(12_182);
    expect(slotOf('{user1000}.following')).toBe(slotOf('{user1000}.followers'));
    expect(slotOf('agentsocket:{u:alice}:meta')).toBe(slotOf('agentsocket:{u:alice}:events'));
    expect(slotOf('foo{}{bar}')).toBe(slotOf('foo{}{bar}'));
    expect(slotOf('foo{}{bar}')).not.toBe(slotOf('bar'));
    const { owners, masters } = parseClusterSlots(
      [
        [0, 8191, ['127.0.0.1', 7000, 'a'], ['127.0.0.1', 7003, 'd']],
        [8192, 16383, ['', 7001, 'b']],
      ],
      '10.0.0.9',
    );
    expect(owners[0]).toBe('127.0.0.1:7000');
    // A node that does not know its own address: the host the reply came from.
    expect(owners[16_383]).toBe('10.0.0.9:7001');
    expect(masters.map((m) => m.address)).toEqual(['127.0.0.1:7000', '10.0.0.9:7001']);
  });
});

describe('ShardCounters', () => {
  it('remembers at most its limit of shard addresses, forgetting the first seen', () => {
    const counters = new ShardCounters(4);
    for (let i = 0; i < 10; i++) counters.of(`10.0.0.${i}:6379`).failovers++;
    expect(counters.size).toBe(4);
    expect([...counters.addresses()]).toEqual([6, 7, 8, 9].map((i) => `10.0.0.${i}:6379`));
    expect(counters.peek('10.0.0.0:6379')).toBeUndefined();
    expect(counters.peek('10.0.0.9:6379')).toEqual({ failovers: 1, slotMoves: 0 });
    expect(new ShardCounters().of('a:1')).toEqual({ failovers: 0, slotMoves: 0 });
    expect(SHARD_COUNTERS_LIMIT).toBe(1_024);
  });
});
