/**
 * A shard's master SIGKILLed while users stream (issue 18): its replica is
 * promoted, and replication being asynchronous, it may lack the last
 * acknowledged publishes. The engine never lets that pass silently: every
 * stream of that shard moves to a new epoch (the followers raise `onResync`,
 * a cursor of the old epoch reads `gap: true` and the retained history),
 * no (epoch, seq) ever names two events, and the streams of the other shards
 * go on untouched.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PublishOutcome } from '../../src/broker/broker.js';
import { slotOf } from '../../src/broker/redis/cluster-slots.js';
import { RedisBroker } from '../../src/broker/redis/redis-broker.js';
import { RecordingHandlers } from '../helpers/recording-handlers.js';
import { RedisCluster } from '../helpers/redis-cluster.js';
import { redisServerMissing } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/wait-for.js';
import { publishRetrying } from '../helpers/publish-retrying.js';
import { note, usersOnEveryShard } from './cluster-fixtures.js';

describe.skipIf(redisServerMissing)(
  'RedisBroker on Redis Cluster: a master killed mid-stream',
  () => {
    let cluster: RedisCluster;
    const brokers: RedisBroker[] = [];
    beforeAll(async () => {
      cluster = await RedisCluster.start();
    }, 60_000);
    afterAll(async () => {
      for (const broker of brokers) await broker.close();
      await cluster?.dispose();
    });

    async function node(): Promise<{ broker: RedisBroker; handlers: RecordingHandlers }> {
      const broker = new RedisBroker({ cluster: cluster.urls, commandTimeoutMs: 1_000 });
      const handlers = new RecordingHandlers();
      await broker.start(handlers);
      brokers.push(broker);
      return { broker, handlers };
    }

    it('moves the streams of the failed shard to a new epoch, never a reused seq; other shards intact', async () => {
      const publisher = await node();
      const follower = await node();
      const users = await usersOnEveryShard(cluster, 'fo', 4);
      for (const user of users) await follower.broker.subscribe(user);
      // The master of slot 0: the first of the slot table, so the one every
      // node's bus link (broadcast, control) is on; it must move without the
      // nodes that need only other shards going unready.
      const victim = await cluster.masterOf(0);
      const onVictim = new Set<string>();
      for (const user of users) {
        if ((await cluster.masterOf(slotOf(`{u:${user}}`))).port === victim.port)
          onVictim.add(user);
      }
      // A third node follows only users of the other shards: it never needs
      // the shard that fails, so it stays ready throughout.
      const bystander = await node();
      for (const user of users.filter((u) => !onVictim.has(u)))
        await bystander.broker.subscribe(user);
      const firstEpoch = new Map<string, string>();
      for (const user of users) {
        firstEpoch.set(user, (await publisher.broker.readHistory(user, { kind: 'acked' })).epoch);
      }

      const acked = new Map<string, { id: string; outcome: PublishOutcome }[]>();
      let stopAt = Number.POSITIVE_INFINITY;
      let killed: Promise<void> | undefined;
      await Promise.all(
        users.map(async (user) => {
          const list: { id: string; outcome: PublishOutcome }[] = [];
          acked.set(user, list);
          for (let n = 0; n < stopAt && n < 500; n++) {
            const id = `${user}-${n}`;
            list.push({ id, outcome: await publishRetrying(publisher.broker, user, note(n, id)) });
            if (user === users[0] && n === 10) {
              // Mid-stream: the other users' publishes are in flight.
              killed = victim.kill().then(async () => {
                await cluster.waitHealthy(20_000);
                stopAt = n + 25;
              });
            }
          }
        }),
      );
      await killed;

      for (const user of users) {
        const outcomes = acked.get(user)!;
        // No (epoch, seq) names two events.
        const byPosition = new Map<string, string>();
        for (const { id, outcome } of outcomes) {
          if (outcome.duplicate) continue;
          const key = `${outcome.epoch}/${outcome.seq}`;
          expect(byPosition.get(key) ?? id, `${user} ${key}`).toBe(id);
          byPosition.set(key, id);
        }
        const final = await publisher.broker.readHistory(user, {
          kind: 'position',
          seq: 0,
          epoch: firstEpoch.get(user)!,
        });
        const ids = final.events.map((e) => e.id);
        expect(new Set(ids).size, `${user}: no duplicate in history`).toBe(ids.length);
        if (onVictim.has(user)) {
          // The failover is never passed over: a new epoch, a gap, the
          // retained events (what the promoted replica holds), in order.
          expect(final.epoch).not.toBe(firstEpoch.get(user));
          expect(final.gap).toBe(true);
          expect(final.events.length).toBeGreaterThan(0);
          const order = ids.map((id) => Number(id.split('-').at(-1)));
          expect(order).toEqual([...order].sort((a, b) => a - b));
          await waitFor(() => follower.handlers.resyncs.includes(user), {
            what: `onResync for ${user}`,
          });
        } else {
          expect(final.epoch).toBe(firstEpoch.get(user));
          expect(final.gap).toBe(false);
          expect(ids).toEqual(outcomes.map((o) => o.id));
          expect(follower.handlers.resyncs).not.toContain(user);
        }
        // Live delivery on the other node goes on (after a resync, from the
        // new epoch: the gateway reads the rest from history) ...
        const last = onVictim.has(user)
          ? await publishRetrying(publisher.broker, user, note(999, `${user}-after`))
          : outcomes.at(-1)!.outcome;
        await waitFor(
          () => {
            const latest = follower.handlers.of(user).at(-1);
            return latest?.epoch === last.epoch && latest.event.seq === last.seq;
          },
          { what: `the last event of ${user} delivered`, timeoutMs: 10_000 },
        );
        if (onVictim.has(user)) byPosition.set(`${last.epoch}/${last.seq}`, `${user}-after`);
        // ... and within an epoch, each seq once, in order, and always the
        // event acknowledged at that position.
        const seen = new Map<string, number>();
        for (const { epoch, event } of follower.handlers.of(user)) {
          expect(event.seq).toBeGreaterThan(seen.get(epoch) ?? 0);
          seen.set(epoch, event.seq);
          const id = byPosition.get(`${epoch}/${event.seq}`);
          if (id !== undefined) expect(event.id).toBe(id);
        }
        if (!onVictim.has(user)) {
          expect(follower.handlers.seqsOf(user)).toEqual(outcomes.map((o) => o.outcome.seq));
        }
      }
      expect(onVictim.size).toBeGreaterThan(0);
      expect(onVictim.size).toBeLessThan(users.length);
      const stats = follower.broker.shards();
      expect(stats.some((s) => s.failovers > 0)).toBe(true);
      // Readiness: the follower needed the failed shard (unready until its
      // users' channels held again on the promoted replica); the bystander
      // and the publisher never did.
      expect(follower.handlers.healthChanges).toContainEqual(
        expect.objectContaining({ healthy: false }),
      );
      expect(follower.broker.health().healthy).toBe(true);
      for (const other of [bystander, publisher]) {
        expect(other.handlers.healthChanges.filter((change) => !change.healthy)).toEqual([]);
        expect(other.broker.health().healthy).toBe(true);
      }
    }, 60_000);
  },
);
