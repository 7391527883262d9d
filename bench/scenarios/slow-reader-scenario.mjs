/**
 * (g) Token flood to a slow reader: one run of `deltas` one-character
 * `agent_thinking` deltas published at full speed to a user whose one
 * connection reads at `bytesPerSecond` (a phone on a poor network). The
 * reader is on the server's Unix socket (server-host.mjs says why), paced
 * by bench/load/slow-reader.mjs.
 *
 * agentsocket merges the deltas a lagging connection has not been sent yet
 * (protocol 1.1, coalesced deltas): fewer frames and bytes, the same text.
 * A bare ws server and Socket.IO can only buffer everything for the reader
 * (what they do here: the reader gets every frame, late) or drop.
 */
import { nowMs } from '../lib/clock.mjs';
import { SlowReader } from '../load/slow-reader.mjs';
import { withSession } from './with-session.mjs';

const USER = 'slow-reader';

export const slowReaderScenario = {
  id: 'slow-reader',
  title: '(g) Token flood to a slow reader',
  systems: ['agentsocket', 'agentsocket-redis', 'ws', 'socketio'],
  describe: ({ slowReader: s }) =>
    `${s.deltas} one-character deltas of one run, published at full speed, to one connection ` +
    `that reads ${Math.round(s.bytesPerSecond / 1000)} KB/s.`,
  metrics: [
    { key: 'frames', label: 'frames the reader received', unit: 'frames', better: 'lower' },
    { key: 'kib', label: 'bytes the reader received', unit: 'KiB', better: 'lower' },
    {
      key: 'catchUpS',
      label: 'first delta published → whole run read',
      unit: 's',
      better: 'lower',
    },
  ],
  async run(ctx, system) {
    const { deltas, bytesPerSecond, batch, timeoutMs } = ctx.config.slowReader;
    return withSession(ctx, system, 'none', async (session) => {
      const reader = new SlowReader({
        system: system.startsWith('agentsocket') ? 'agentsocket' : system,
        unixPath: session.unixPath,
        userId: USER,
        bytesPerSecond,
      });
      try {
        await reader.open();
        await session.waitServerConnections(1);
        const flood = await session.server.call(
          'flood',
          { userId: USER, runId: 'flood', deltas, batch },
          timeoutMs,
        );
        const deadline = nowMs() + timeoutMs;
        while (reader.completedAtMs === null && reader.closedWith === null) {
          if (nowMs() > deadline) throw new Error(`slow-reader: not done in ${timeoutMs} ms`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        if (reader.closedWith !== null && reader.completedAtMs === null) {
          throw new Error(`slow-reader: closed with ${reader.closedWith} before the end`);
        }
        if (reader.text !== flood.text) {
          throw new Error(
            `slow-reader: text differs (${reader.text.length} of ${flood.text.length} chars)`,
          );
        }
        return {
          values: {
            frames: reader.frames,
            kib: reader.bytes / 1024,
            catchUpS: (reader.completedAtMs - flood.startMs) / 1000,
          },
          diagnostics: {
            published: flood.published,
            mergedFrames: reader.mergedFrames,
            publishS: Math.round(flood.endMs - flood.startMs) / 1000,
          },
        };
      } finally {
        reader.close();
      }
    });
  },
};
