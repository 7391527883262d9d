/**
 * (d) Broadcast: every open connection gets every broadcast (agentsocket
 * `broadcast`, ws: encode once and send to every client, Socket.IO
 * `io.emit`). B broadcasts back to back after a warm-up.
 */
import { userIds } from '../lib/bench-session.mjs';
import { deliveryDiagnostics, withSession } from './with-session.mjs';

export const broadcastScenario = {
  id: 'broadcast',
  title: '(d) Broadcast',
  describe: ({ broadcast: b }) =>
    `${b.count} broadcasts to ${b.connections} connections ` +
    `(${b.count * b.connections} deliveries) after a warm-up of ${b.warmup}.`,
  metrics: [
    { key: 'throughput', label: 'delivered msg/s', unit: 'msg/s', better: 'higher' },
    { key: 'cpuUsPerMsg', label: 'server CPU per delivered message', unit: 'µs', better: 'lower' },
    { key: 'p50Ms', label: 'latency p50', unit: 'ms', better: 'lower' },
    { key: 'p99Ms', label: 'latency p99', unit: 'ms', better: 'lower' },
  ],
  async run(ctx, system) {
    const { connections, count, warmup } = ctx.config.broadcast;
    const textBytes = ctx.config.textBytes;
    return withSession(ctx, system, 'jwt', async (session) => {
      await session.connectAll(userIds(connections), { concurrency: 100 });
      await session.measureDelivery('broadcast', { count: warmup, textBytes }, (n) => n * warmup);
      const measured = await session.measureDelivery(
        'broadcast',
        { count, textBytes },
        (n) => n * count,
      );
      return {
        values: {
          throughput: measured.throughput,
          cpuUsPerMsg: measured.cpuUsPerMsg,
          p50Ms: measured.p50Ms,
          p99Ms: measured.p99Ms,
        },
        diagnostics: deliveryDiagnostics('broadcast', measured),
      };
    });
  },
};
