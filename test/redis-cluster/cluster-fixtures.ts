/**
 * What the Redis Cluster tests share: users spread over every shard, events
 * with ids (a publish retried while a shard fails over or a slot moves is
 * `publishRetrying`, test/helpers/publish-retrying.ts).
 */
import { slotOf } from '../../src/broker/redis/cluster-slots.js';
import { encodeEvent, type EncodedEvent } from '../../src/protocol/event-frame.js';
import { validateEventInput } from '../../src/protocol/event-input.js';
import type { RedisCluster } from '../helpers/redis-cluster.js';

export function note(n: number, id: string): EncodedEvent {
  const result = validateEventInput({ event: 'note', data: { n }, id }, 1024);
  if (!result.ok) throw new Error(result.failure.message);
  return encodeEvent(result.value);
}

/** `perShard` user ids on each master of the cluster (named `<prefix>-<n>`). */
export async function usersOnEveryShard(
  cluster: RedisCluster,
  prefix: string,
  perShard: number,
): Promise<string[]> {
  const masters = (await cluster.masters()).map((s) => s.port);
  const counts = new Map<number, number>(masters.map((port) => [port, 0]));
  const users: string[] = [];
  for (let n = 0; users.length < masters.length * perShard && n < 10_000; n++) {
    const user = `${prefix}-${n}`;
    const port = (await cluster.masterOf(slotOf(`{u:${user}}`))).port;
    if ((counts.get(port) ?? perShard) >= perShard) continue;
    counts.set(port, counts.get(port)! + 1);
    users.push(user);
  }
  return users;
}
