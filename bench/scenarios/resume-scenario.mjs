/**
 * (f) Resume storm, agentsocket only, both engines (bare ws and Socket.IO 4 as
 * configured here have no resume: events published while a client is away are lost).
 * N clients connect and receive `live` events each; all drop at once; the
 * server publishes `behind` more per user into history; then all N reconnect
 * at once with `?lastSeq=&epoch=` and must each get exactly `behind` replayed
 * events, no gap.
 */
import { userIds } from '../lib/bench-session.mjs';
import { withSession } from './with-session.mjs';

export const resumeScenario = {
  id: 'resume',
  title: '(f) Resume storm',
  systems: ['agentsocket', 'agentsocket-redis'],
  describe: ({ resume: r }) =>
    `${r.clients} clients drop after ${r.live} live events each; ${r.behind} events per user are ` +
    `published while they are away; all ${r.clients} reconnect at once with their cursor ` +
    `(${r.clients * r.behind} replayed events). bare ws and Socket.IO have no resume: not measured.`,
  metrics: [
    {
      key: 'stormMs',
      label: 'storm: first dial → every client caught up',
      unit: 'ms',
      better: 'lower',
    },
    {
      key: 'reconnectsPerSec',
      label: 'reconnections/s (to welcome)',
      unit: 'conn/s',
      better: 'higher',
    },
    { key: 'catchUpP50Ms', label: 'per-client catch-up p50', unit: 'ms', better: 'lower' },
    { key: 'catchUpP99Ms', label: 'per-client catch-up p99', unit: 'ms', better: 'lower' },
    { key: 'replayedPerSec', label: 'replayed msg/s', unit: 'msg/s', better: 'higher' },
    {
      key: 'cpuUsPerMsg',
      label: 'server CPU per replayed message, handshakes included',
      unit: 'µs',
      better: 'lower',
    },
  ],
  async run(ctx, system) {
    const { clients, live, behind } = ctx.config.resume;
    const textBytes = ctx.config.textBytes;
    return withSession(ctx, system, 'jwt', async (session) => {
      const ids = userIds(clients);
      await session.connectAll(ids, { concurrency: ctx.config.resume.concurrency });
      const first = await session.measureDelivery(
        'saturate',
        { userIds: ids, perUser: live, textBytes },
        (n) => n * live,
      );
      if (!first.complete) throw new Error(`resume: live phase delivered ${first.delivered}`);
      await session.disconnect();
      await session.waitServerConnections(0);
      await session.server.call('saturate', { userIds: ids, perUser: behind, textBytes });
      await session.reset();
      const before = await session.serverUsage();
      const redisBefore = await session.redisCpuMicros();
      // Everyone at once: as many handshakes in flight as clients.
      const storm = await session.connect(ids, { concurrency: clients, resume: true });
      const caught = await session.waitReceived((n) => n, 'caughtUp');
      const after = await session.serverUsage();
      const redisAfter = await session.redisCpuMicros();
      if (storm.failed > 0) {
        throw new Error(
          `resume: ${storm.failed} reconnects failed: ${JSON.stringify(storm.errors)}`,
        );
      }
      if (caught.timedOut || caught.replayed !== clients * behind || caught.gaps > 0) {
        throw new Error(
          `resume: ${caught.caughtUp}/${clients} caught up, ${caught.replayed} replayed ` +
            `(expected ${clients * behind}), ${caught.gaps} gaps`,
        );
      }
      const stormMs = caught.lastAtMs - storm.startMs;
      const cpu = after.cpu.user + after.cpu.system - (before.cpu.user + before.cpu.system);
      return {
        values: {
          stormMs,
          reconnectsPerSec: storm.opened / (storm.elapsedMs / 1000),
          catchUpP50Ms: caught.catchUp.percentile(50),
          catchUpP99Ms: caught.catchUp.percentile(99),
          replayedPerSec: caught.replayed / (stormMs / 1000),
          cpuUsPerMsg: cpu / caught.replayed,
        },
        diagnostics: {
          replayed: caught.replayed,
          gaps: caught.gaps,
          ...(redisBefore !== null
            ? {
                redisCpuUsPerMsg:
                  Math.round(((redisAfter - redisBefore) / caught.replayed) * 100) / 100,
              }
            : {}),
          ...(Object.keys(caught.unexpectedCloses).length > 0
            ? { unexpectedCloses: caught.unexpectedCloses }
            : {}),
        },
      };
    });
  },
};
