/**
 * Which Redis run a node talks to, and whether that Redis's persistence
 * proves that a restart keeps every acknowledged write.
 *
 * Only `appendonly yes` with `appendfsync always` proves it: Redis fsyncs the
 * AOF before it replies. With `everysec` the last second may be lost on a
 * crash, with RDB everything since the last snapshot, with neither everything.
 * A loss that keeps the user's meta hash rolls its `seq` back under the same
 * epoch, and new events would reuse seqs clients already hold. So the
 * scripts stamp each meta hash with the run it was last written under, and
 * whether that run was proven (`RUN_GUARD` in scripts.ts): a stream whose
 * stamp names another run and was not proven moves to a new epoch.
 *
 * A Redis where CONFIG is renamed or refused (managed services) cannot show
 * its settings: that is unproven, and the summary says so.
 */
import type { Redis } from 'ioredis';

export interface RedisPersistence {
  /** True only for `appendonly yes` + `appendfsync always`. */
  proven: boolean;
  /** The settings as CONFIG GET answered them; null when CONFIG could not be read. */
  appendonly: string | null;
  appendfsync: string | null;
  save: string | null;
  /** One line for logs and `/readyz`: the settings, or why they are unknown, and what follows. */
  summary: string;
}

/** A Redis run (`INFO server` `run_id`: new on every start) and its persistence. */
export interface RedisRun {
  runId: string;
  persistence: RedisPersistence;
}

/** The `run_id` line of `INFO server`; undefined when absent. */
export function parseRunId(info: string): string | undefined {
  return /^run_id:([0-9a-f]+)\s*$/m.exec(info)?.[1];
}

/** Judges the settings CONFIG GET returned (name → value), or the error it failed with. */
export function judgePersistence(config: Map<string, string> | Error): RedisPersistence {
  if (config instanceof Error) {
    return {
      proven: false,
      appendonly: null,
      appendfsync: null,
      save: null,
      summary:
        `persistence unknown (CONFIG GET failed: ${config.message}); treated as unproven: ` +
        'a Redis restart moves every stream to a new epoch',
    };
  }
  const appendonly = config.get('appendonly') ?? null;
  const appendfsync = config.get('appendfsync') ?? null;
  const save = config.get('save') ?? null;
  const proven = appendonly === 'yes' && appendfsync === 'always';
  const settings = `appendonly ${appendonly ?? '?'}, appendfsync ${appendfsync ?? '?'}, save "${save ?? '?'}"`;
  return {
    proven,
    appendonly,
    appendfsync,
    save,
    summary: proven
      ? `${settings}: every acknowledged write survives a restart`
      : `${settings}: a restart may lose acknowledged writes, so it moves every stream to a new epoch`,
  };
}

/** Reads the run id and the persistence settings over `client` (one round trip each). */
export async function probeRun(client: Redis): Promise<RedisRun> {
  const info = await client.info('server');
  const runId = parseRunId(info);
  if (runId === undefined) throw new Error('INFO server has no run_id');
  let config: Map<string, string> | Error;
  try {
    // One name per call: CONFIG GET takes several only since Redis 7.
    const replies = await Promise.all(
      ['appendonly', 'appendfsync', 'save'].map((name) => client.config('GET', name)),
    );
    config = new Map();
    for (const reply of replies) {
      const pairs = reply as unknown as string[];
      for (let i = 0; i + 1 < pairs.length; i += 2) config.set(pairs[i]!, pairs[i + 1]!);
    }
  } catch (error) {
    // Refused (renamed, disabled, no ACL permission): unproven. Anything else
    // (the link dropped) fails the probe, which runs again on the next connect.
    if (!(error instanceof Error) || error.name !== 'ReplyError') throw error;
    config = error;
  }
  return { runId, persistence: judgePersistence(config) };
}
