/**
 * (e) Large messages: a 64 KiB message published to each of N users, in
 * rounds, so every system serializes and writes the same bytes.
 */
import { userIds } from '../lib/bench-session.mjs';
import { deliveryDiagnostics, withSession } from './with-session.mjs';

/**
 * glibc's malloc asks for transparent huge pages on its heap with this
 * setting (glibc 2.35 and later; ignored elsewhere). The history keeps every
 * 64 KiB frame in memory never touched before, and each 4 KiB page of it
 * costs a page fault on first touch; with 2 MiB pages a frame costs a
 * fraction of one. A deployment setting (docs/operations.md), measured here
 * as a diagnostic with every system's server under it.
 */
const HUGE_PAGES_ENV = { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1' };

/** One measurement: connect, warm up, then the measured rounds. */
async function measureLarge(ctx, system, serverEnv) {
  const { users, perUser, warmupPerUser, bytes } = ctx.config.large;
  return withSession(
    ctx,
    system,
    'jwt',
    async (session) => {
      const ids = userIds(users);
      await session.connectAll(ids, { concurrency: 100 });
      await session.measureDelivery(
        'saturate',
        { userIds: ids, perUser: warmupPerUser, textBytes: bytes },
        (n) => n * warmupPerUser,
      );
      return session.measureDelivery(
        'saturate',
        { userIds: ids, perUser, textBytes: bytes },
        (n) => n * perUser,
      );
    },
    { serverEnv },
  );
}

export const largeScenario = {
  id: 'large',
  title: '(e) 64 KiB messages',
  describe: ({ large: l }) =>
    `${l.users} users, ${l.perUser} messages of ${l.bytes / 1024} KiB each per user ` +
    `(${l.users * l.perUser} deliveries, ${Math.round((l.users * l.perUser * l.bytes) / 1024 / 1024)} MiB).`,
  metrics: [
    { key: 'throughput', label: 'delivered msg/s', unit: 'msg/s', better: 'higher' },
    { key: 'mibPerSec', label: 'delivered MiB/s', unit: 'MiB/s', better: 'higher' },
    { key: 'cpuUsPerMsg', label: 'server CPU per delivered message', unit: 'µs', better: 'lower' },
    { key: 'p50Ms', label: 'latency p50', unit: 'ms', better: 'lower' },
    { key: 'p99Ms', label: 'latency p99', unit: 'ms', better: 'lower' },
    {
      key: 'hugePagesCpuUsPerMsg',
      label: `server CPU per delivered message, every server with ${HUGE_PAGES_ENV.GLIBC_TUNABLES}`,
      unit: 'µs',
      better: 'lower',
    },
  ],
  async run(ctx, system) {
    const { bytes } = ctx.config.large;
    const measured = await measureLarge(ctx, system, {});
    const huge = await measureLarge(ctx, system, HUGE_PAGES_ENV);
    return {
      values: {
        throughput: measured.throughput,
        mibPerSec: (measured.throughput * bytes) / 1024 / 1024,
        cpuUsPerMsg: measured.cpuUsPerMsg,
        p50Ms: measured.p50Ms,
        p99Ms: measured.p99Ms,
        hugePagesCpuUsPerMsg: huge.cpuUsPerMsg,
      },
      diagnostics: {
        ...deliveryDiagnostics('large', measured),
        ...deliveryDiagnostics('large.hugePages', huge),
      },
    };
  },
};
