/**
 * (b) Memory per idle connection: a fresh server, its RSS and heap after GC
 * (the baseline), N clients connected and left idle, RSS and heap after GC
 * again; (after − baseline) / N. Once per connection count.
 */
import { userIds } from '../lib/bench-session.mjs';
import { withSession } from './with-session.mjs';

const KIB = 1024;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function measure(ctx, system, count) {
  const { concurrency, settleMs } = ctx.config.memory;
  return withSession(ctx, system, 'jwt', async (session) => {
    const ids = userIds(count);
    await session.prepare(ids);
    const baseline = await session.serverUsage({ gc: true });
    await session.connectAll(ids, { concurrency });
    // Let handshake garbage and timers settle before the measurement; not a test.
    await sleep(settleMs);
    const after = await session.serverUsage({ gc: true });
    return {
      rss: (after.rss - baseline.rss) / count / KIB,
      heap: (after.heapUsed - baseline.heapUsed) / count / KIB,
    };
  });
}

export const memoryScenario = {
  id: 'memory',
  title: '(b) Memory per idle connection',
  describe: (config) =>
    `${config.memory.counts.join(' and ')} idle connections (JWT); server RSS and V8 heap ` +
    'after `global.gc()`, minus the same server before any connection, per connection (KiB).',
  metrics: [
    {
      key: 'rssPerConnSmall',
      label: 'RSS per connection at {small}',
      unit: 'KiB',
      better: 'lower',
    },
    {
      key: 'heapPerConnSmall',
      label: 'heap per connection at {small}',
      unit: 'KiB',
      better: 'lower',
    },
    {
      key: 'rssPerConnLarge',
      label: 'RSS per connection at {large}',
      unit: 'KiB',
      better: 'lower',
    },
    {
      key: 'heapPerConnLarge',
      label: 'heap per connection at {large}',
      unit: 'KiB',
      better: 'lower',
    },
  ],
  async run(ctx, system) {
    const [small, large] = ctx.config.memory.counts;
    const atSmall = await measure(ctx, system, small);
    const atLarge = await measure(ctx, system, large);
    return {
      values: {
        rssPerConnSmall: atSmall.rss,
        heapPerConnSmall: atSmall.heap,
        rssPerConnLarge: atLarge.rss,
        heapPerConnLarge: atLarge.heap,
      },
      diagnostics: {},
    };
  },
};
