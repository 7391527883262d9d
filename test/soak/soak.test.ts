/**
 * The one-minute chaos soak (scripts/soak/run.mjs, docs/reliability.md) as
 * part of the suite: three real gateway processes on one private
 * redis-server, 100 simulated users with 1-3 connections each, agents
 * publishing over the HTTP API, while nodes are SIGKILLed, Redis is
 * SIGKILLed twice: restarted from its AOF (`appendfsync always`: the epoch
 * stays), then from an RDB snapshot 3 s old (`--redis-rdb-restart`: the
 * crash rolls seqs back, so every stream must move to a new epoch, and
 * clients are told with `gap: true`; issue 17), while sockets are dropped
 * and readers stalled. Its JSON summary must say: nothing lost, duplicated
 * or reordered, no seq skipped, no unexplained gap, and new-epoch gaps seen.
 * (The `everysec` phase stays off here: a SIGKILL loses nothing under it,
 * so it would only add time.)
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { redisServerMissing } from '../helpers/redis-server.js';

const SCRIPT = fileURLToPath(new URL('../../scripts/soak/run.mjs', import.meta.url));
/** One minute of publishing, plus start, drain and catch-up, on a loaded 2-core machine. */
const SOAK_TIMEOUT_MS = 240_000;

interface SoakSummary {
  soak: 'pass' | 'fail';
  reasons: string[];
  published: number;
  received: number;
  lost: number;
  duplicated: number;
  reordered: number;
  skips: number;
  gapsExplained: number;
  gapsUnexplained: number;
  caughtUp: boolean;
  chaos: Record<string, number>;
}

describe.skipIf(redisServerMissing)('chaos soak, one minute', () => {
  let child: ReturnType<typeof spawn> | undefined;

  afterAll(() => {
    // By pid: the script kills its own redis-server and nodes on exit.
    if (child?.exitCode === null) child.kill('SIGINT');
  });

  it(
    'loses, duplicates and reorders nothing while nodes and Redis (AOF always, then RDB) are killed',
    async () => {
      const soak = spawn(
        process.execPath,
        [
          SCRIPT,
          '--minutes',
          '1',
          '--users',
          '100',
          '--no-redis-everysec-restart',
          '--redis-rdb-restart',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      child = soak;
      let out = '';
      let err = '';
      soak.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
      soak.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => soak.once('exit', resolve));

      const lines = out.trim().split('\n');
      const last = lines[lines.length - 1] ?? '';
      const report = `exit ${code}\n${lines.slice(-60).join('\n')}\n${err.slice(-2_000)}`;
      expect(last.startsWith('{'), report).toBe(true);
      const summary = JSON.parse(last) as SoakSummary;
      expect(summary.published, report).toBeGreaterThan(1_000);
      expect(summary.received, report).toBeGreaterThanOrEqual(summary.published);
      expect(summary.chaos['SIGKILL node'], report).toBeGreaterThanOrEqual(2);
      expect(summary.chaos['SIGKILL redis'], report).toBe(2);
      expect(summary.chaos['redis snapshot, AOF off'], report).toBe(1);
      // The RDB crash moved the streams to new epochs, and clients were told.
      expect(summary.gapsExplained, report).toBeGreaterThan(0);
      expect(
        {
          lost: summary.lost,
          duplicated: summary.duplicated,
          reordered: summary.reordered,
          skips: summary.skips,
          gapsUnexplained: summary.gapsUnexplained,
          caughtUp: summary.caughtUp,
        },
        report,
      ).toEqual({
        lost: 0,
        duplicated: 0,
        reordered: 0,
        skips: 0,
        gapsUnexplained: 0,
        caughtUp: true,
      });
      expect(summary.reasons, report).toEqual([]);
      expect(code, report).toBe(0);
    },
    SOAK_TIMEOUT_MS,
  );
});
