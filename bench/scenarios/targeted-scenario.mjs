/**
 * (c) Targeted per-user delivery: one client per user; the server publishes
 * to each user (agentsocket: `publish`, ws: the user's sockets, Socket.IO:
 * the user's room). At saturation (K events per user, one round per event,
 * as fast as the server goes) and at a fixed total rate.
 */
import { isAgentsocket, onRedis } from '../lib/bench-config.mjs';
import { userIds } from '../lib/bench-session.mjs';
import { deliveryDiagnostics, withSession } from './with-session.mjs';

export const targetedScenario = {
  id: 'targeted',
  title: '(c) Targeted per-user delivery',
  describe: ({ targeted: t, textBytes }) =>
    `${t.users} users, one connection each, small messages (${textBytes}-byte text + send time). ` +
    `Saturation: ${t.perUser} events per user (${t.users * t.perUser} messages) after a warm-up ` +
    `of ${t.warmupPerUser}; fixed rate: ${t.ratePerSec} msg/s for ${t.rateMs / 1000} s, round-robin ` +
    `(agentsocket (Redis): ${t.redisRatePerSec} msg/s, below its saturation here, so its fixed-rate ` +
    'figures and their ratios compare different loads).',
  metrics: [
    { key: 'satThroughput', label: 'saturation: delivered msg/s', unit: 'msg/s', better: 'higher' },
    {
      key: 'satCpuUsPerMsg',
      label: 'saturation: server CPU per message',
      unit: 'µs',
      better: 'lower',
    },
    { key: 'satP50Ms', label: 'saturation: latency p50', unit: 'ms', better: 'lower' },
    { key: 'satP99Ms', label: 'saturation: latency p99', unit: 'ms', better: 'lower' },
    {
      key: 'rateCpuUsPerMsg',
      label: 'fixed rate: server CPU per message',
      unit: 'µs',
      better: 'lower',
    },
    { key: 'rateP50Ms', label: 'fixed rate: latency p50', unit: 'ms', better: 'lower' },
    { key: 'rateP99Ms', label: 'fixed rate: latency p99', unit: 'ms', better: 'lower' },
    { key: 'rateAchieved', label: 'fixed rate: delivered msg/s', unit: 'msg/s', better: 'higher' },
    {
      key: 'inStepP99Ms',
      label: 'fixed rate, clients acking in step: latency p99',
      unit: 'ms',
      better: 'lower',
    },
    {
      key: 'satRedisCpuUsPerMsg',
      label: 'saturation: redis-server CPU per message (all shards)',
      unit: 'µs',
      better: 'lower',
    },
    {
      key: 'rateRedisCpuUsPerMsg',
      label: 'fixed rate: redis-server CPU per message (all shards)',
      unit: 'µs',
      better: 'lower',
    },
  ],
  async run(ctx, system) {
    const { users, perUser, warmupPerUser, rateMs } = ctx.config.targeted;
    const { ratePerSec, redisRatePerSec } = ctx.config.targeted;
    const rateOfSystem = onRedis(system) ? redisRatePerSec : ratePerSec;
    const textBytes = ctx.config.textBytes;
    return withSession(ctx, system, 'jwt', async (session) => {
      const ids = userIds(users);
      await session.connectAll(ids, { concurrency: 100 });
      await session.measureDelivery(
        'saturate',
        { userIds: ids, perUser: warmupPerUser, textBytes },
        (n) => n * warmupPerUser,
      );
      const sat = await session.measureDelivery(
        'saturate',
        { userIds: ids, perUser, textBytes },
        (n) => n * perUser,
      );
      // Whole rounds, so that every user gets the same number of events.
      const perUserAtRate = Math.max(1, Math.round((rateOfSystem * rateMs) / 1000 / users));
      const rate = await session.measureDelivery(
        'rate',
        { userIds: ids, ratePerSec: rateOfSystem, total: perUserAtRate * users, textBytes },
        (n) => n * perUserAtRate,
      );
      // The same rate again with every client acking in the same round, half
      // way through: 2,000 ack frames within about 100 ms, the worst case of
      // inbound frames (docs/performance.md, "Sixth pass"). Bare ws and
      // Socket.IO clients never ack: theirs is the same run.
      let inStep = rate;
      if (isAgentsocket(system)) {
        await session.setAckEvery(ctx.config.ackEvery, Math.ceil(perUserAtRate / 2));
        inStep = await session.measureDelivery(
          'rate',
          { userIds: ids, ratePerSec: rateOfSystem, total: perUserAtRate * users, textBytes },
          (n) => n * perUserAtRate,
        );
      }
      return {
        values: {
          satThroughput: sat.throughput,
          satCpuUsPerMsg: sat.cpuUsPerMsg,
          satP50Ms: sat.p50Ms,
          satP99Ms: sat.p99Ms,
          rateCpuUsPerMsg: rate.cpuUsPerMsg,
          rateP50Ms: rate.p50Ms,
          rateP99Ms: rate.p99Ms,
          rateAchieved: rate.throughput,
          inStepP99Ms: inStep.p99Ms,
          // null (left out of the table) for the systems without Redis.
          satRedisCpuUsPerMsg: sat.redisCpuUsPerMsg,
          rateRedisCpuUsPerMsg: rate.redisCpuUsPerMsg,
        },
        diagnostics: {
          ...deliveryDiagnostics('saturation', sat),
          ...deliveryDiagnostics('rate', rate),
        },
      };
    });
  },
};
