/**
 * A live reshard (issue 18): the slots of some users move from one master to
 * another, key by key (CLUSTER SETSLOT IMPORTING/MIGRATING, MIGRATE, SETSLOT
 * NODE, as `redis-cli --cluster reshard` does), while those users and others
 * stream. A migration copies keys whole, so nothing may be lost, duplicated
 * or flagged: same epoch, every acknowledged event once in history in
 * order, every seq delivered live once in order on another node, no resync.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PublishOutcome } from '../../src/broker/broker.js';
import { slotOf } from '../../src/broker/redis/cluster-slots.js';
import { RedisBroker } from '../../src/broker/redis/redis-broker.js';
import { RecordingHandlers } from '../helpers/recording-handlers.js';
import { RedisCluster } from '../helpers/redis-cluster.js';
import type { RedisServer } from '../helpers/redis-server.js';
import { redisServerMissing } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/wait-for.js';
import { publishRetrying } from '../helpers/publish-retrying.js';
import { note, usersOnEveryShard } from './cluster-fixtures.js';

describe.skipIf(redisServerMissing)('RedisBroker on Redis Cluster: a live reshard', () => {
  let cluster: RedisCluster;
  const brokers: RedisBroker[] = [];
  beforeAll(async () => {
    cluster = await RedisCluster.start({ replicas: 0 });
  }, 60_000);
  afterAll(async () => {
    for (const broker of brokers) await broker.close();
    await cluster?.dispose();
  });

  async function node(): Promise<{ broker: RedisBroker; handlers: RecordingHandlers }> {
    const broker = new RedisBroker({ cluster: cluster.urls.slice(0, 1), commandTimeoutMs: 1_000 });
    const handlers = new RecordingHandlers();
    await broker.start(handlers);
    brokers.push(broker);
    return { broker, handlers };
  }

  /** Moves `slot` from `source` to `target` one key per MIGRATE, as a reshard does. */
  async function migrate(slot: number, source: RedisServer, target: RedisServer): Promise<number> {
    const [sourceId, targetId] = [await cluster.nodeId(source), await cluster.nodeId(target)];
    await cluster.call(target, ['CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', sourceId]);
    await cluster.call(source, ['CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', targetId]);
    let moved = 0;
    for (;;) {
      const keys = (await cluster.call(source, [
        'CLUSTER',
        'GETKEYSINSLOT',
        String(slot),
        '1',
      ])) as string[];
      if (keys.length === 0) break;
      await cluster.call(source, [
        'MIGRATE',
        '127.0.0.1',
        String(target.port),
        '',
        '0',
        '5000',
        'KEYS',
        ...keys,
      ]);
      moved += keys.length;
    }
    for (const server of await cluster.masters()) {
      await cluster.call(server, ['CLUSTER', 'SETSLOT', String(slot), 'NODE', targetId]);
    }
    return moved;
  }

  it('moves users between masters while they stream: nothing lost, duplicated or flagged', async () => {
    const publisher = await node();
    const follower = await node();
    const users = await usersOnEveryShard(cluster, 'rs', 3);
    for (const user of users) await follower.broker.subscribe(user);
    const masters = await cluster.masters();
    const movers = users.slice(0, 2);
    const plans: { slot: number; source: RedisServer; target: RedisServer }[] = [];
    for (const user of movers) {
      const slot = slotOf(`{u:${user}}`);
      const source = await cluster.masterOf(slot);
      const target = masters.find((m) => m.port !== source.port)!;
      plans.push({ slot, source, target });
    }

    const acked = new Map<string, PublishOutcome[]>();
    let stopAt = Number.POSITIVE_INFINITY;
    let resharded: Promise<number[]> | undefined;
    await Promise.all(
      users.map(async (user) => {
        const list: PublishOutcome[] = [];
        acked.set(user, list);
        for (let n = 0; n < stopAt && n < 400; n++) {
          list.push(await publishRetrying(publisher.broker, user, note(n, `${user}-${n}`)));
          if (user === users[0] && n === 5) {
            resharded = (async () => {
              const moved: number[] = [];
              for (const plan of plans)
                moved.push(await migrate(plan.slot, plan.source, plan.target));
              stopAt = n + 30;
              return moved;
            })();
          }
        }
      }),
    );
    const moved = await resharded!;
    expect(moved.every((count) => count >= 3)).toBe(true);
    for (const plan of plans) {
      expect((await cluster.masterOf(plan.slot)).port).toBe(plan.target.port);
    }

    for (const user of users) {
      const outcomes = acked.get(user)!;
      expect(outcomes.map((o) => o.seq)).toEqual(outcomes.map((_, i) => i + 1));
      expect(new Set(outcomes.map((o) => o.epoch)).size).toBe(1);
      const history = await publisher.broker.readHistory(user, {
        kind: 'position',
        seq: 0,
        epoch: outcomes[0]!.epoch,
      });
      expect(history.gap).toBe(false);
      expect(history.epoch).toBe(outcomes[0]!.epoch);
      expect(history.events.map((e) => e.id)).toEqual(outcomes.map((_, i) => `${user}-${i}`));
      await waitFor(() => follower.handlers.seqsOf(user).length >= outcomes.length, {
        what: `every event of ${user} delivered live`,
        timeoutMs: 10_000,
      });
      expect(follower.handlers.seqsOf(user)).toEqual(outcomes.map((o) => o.seq));
      expect(follower.handlers.of(user).map((r) => r.event.id)).toEqual(
        outcomes.map((_, i) => `${user}-${i}`),
      );
    }
    expect(follower.handlers.resyncs).toEqual([]);
    // A user that moved keeps streaming live on its new master.
    const after = await publishRetrying(publisher.broker, movers[0]!, note(1_000, 'after-move'));
    await waitFor(() => follower.handlers.seqsOf(movers[0]!).at(-1) === after.seq, {
      what: 'a live event after the move',
    });
    await waitFor(
      () =>
        [publisher, follower].every(({ broker }) => broker.shards().some((s) => s.slotMoves > 0)),
      { what: 'the slot moves counted on both nodes', timeoutMs: 5_000 },
    );
    expect(follower.broker.shards().every((s) => s.failovers === 0)).toBe(true);
  }, 60_000);
});
