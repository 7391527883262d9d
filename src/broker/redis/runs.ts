/**
 * The run store on Redis (`run-store.ts`): the publish script appends each
 * event of a run to the run's log (`RedisKeys.run`), and a read folds that
 * log here, in TS, with the same `foldRunEvent` as the memory engine, so both
 * engines answer the same snapshot for the same events.
 *
 * Compaction keeps reads cheap: once a publish reports a log longer than
 * {@link RUN_LOG_COMPACT_AT} entries, the node that published folds it and
 * replaces the folded entries by one checkpoint (the snapshot as JSON, with
 * the fold's `sizeBytes`, so folding on from it gives exactly what folding
 * the entries would). The compaction script applies only if the log's head
 * is still the one read: two nodes compacting at once cannot lose entries.
 * One compaction per run at a time on a node; a failed one is retried by the
 * next long publish.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { JsonValue } from '../../protocol/frames.js';
import { foldRunEvent, type RunEventRecord } from '../../runs/run-snapshot.js';
import type { RunSnapshot } from '../../runs/run-types.js';
import { compareRunsNewestFirst, publicRunSnapshot, type RunStore } from '../run-store.js';
import type { RedisKeys } from './keys.js';
import type { EngineLinks } from './engine-links.js';
import { errorMessage, toBrokerError } from './links.js';

/** A run log longer than this is compacted into a checkpoint after the publish that grew it. */
export const RUN_LOG_COMPACT_AT = 256;
/** A checkpoint entry starts with this; an event record starts with `{"seq":`. */
const CHECKPOINT_PREFIX = '{"checkpoint":';

export interface RedisRunsOptions {
  runTtlMs: number;
  runSnapshotMaxBytes: number;
  logger: Logger | undefined;
}

interface LogRecord {
  seq: number;
  epoch: string;
  ts: number;
  event: string;
  threadId?: string;
  data: JsonValue;
}

function isLogRecord(value: unknown): value is LogRecord {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return (
    typeof record.seq === 'number' &&
    typeof record.epoch === 'string' &&
    typeof record.ts === 'number' &&
    typeof record.event === 'string' &&
    'data' in record
  );
}

export class RedisRuns implements RunStore {
  /** Runs being compacted by this node (`userId\nrunId`): one at a time each. */
  private readonly compacting = new Set<string>();

  constructor(
    private readonly links: EngineLinks,
    private readonly keys: RedisKeys,
    private readonly options: RedisRunsOptions,
  ) {}

  async readRun(userId: string, runId: string): Promise<RunSnapshot | null> {
    const run = (await this.fold(userId, runId))?.snapshot;
    return run === undefined ? null : publicRunSnapshot(run);
  }

  async listRuns(userId: string, limit: number): Promise<RunSnapshot[]> {
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new RangeError('limit must be an integer >= 1');
    }
    const [, , runs] = this.keys.run(userId, '');
    let ids: string[];
    try {
      // The index is bounded by maxRunsPerUser: read it whole, then order by
      // start (the index is ordered by last update).
      ids = await this.links.command.zrevrange(runs, 0, -1);
    } catch (error) {
      throw toBrokerError(error);
    }
    // At most maxRunsPerUser reads, sent at once (ioredis pipelines them).
    const folded = await Promise.all(ids.map((runId) => this.fold(userId, runId)));
    const snapshots: RunSnapshot[] = [];
    for (const run of folded) if (run !== undefined) snapshots.push(run.snapshot);
    return snapshots.sort(compareRunsNewestFirst).slice(0, limit).map(publicRunSnapshot);
  }

  /** A publish left the run's log `length` entries long: compact it when long. */
  onLogLength(userId: string, runId: string, length: number): void {
    if (length <= RUN_LOG_COMPACT_AT) return;
    const key = `${userId}\n${runId}`;
    if (this.compacting.has(key)) return;
    this.compacting.add(key);
    this.compact(userId, runId)
      .catch((error: unknown) =>
        this.options.logger?.warn(
          { err: errorMessage(error) },
          'redis broker: run log compaction failed',
        ),
      )
      .finally(() => this.compacting.delete(key));
  }

  /** Folds the run's log; undefined when it has none (unknown or expired). */
  private async fold(
    userId: string,
    runId: string,
  ): Promise<{ snapshot: RunSnapshot; entries: string[] } | undefined> {
    const [, log] = this.keys.run(userId, runId);
    let entries: string[];
    try {
      entries = await this.links.command.lrange(log, 0, -1);
    } catch (error) {
      throw toBrokerError(error);
    }
    let snapshot: RunSnapshot | undefined;
    const options = { maxBytes: this.options.runSnapshotMaxBytes };
    for (const entry of entries) {
      if (entry.startsWith(CHECKPOINT_PREFIX)) {
        snapshot = (JSON.parse(entry) as { checkpoint: RunSnapshot }).checkpoint;
        continue;
      }
      const record: unknown = JSON.parse(entry);
      if (!isLogRecord(record)) throw new Error('RedisBroker: malformed run log entry');
      const folded: RunEventRecord = { ...record, runId };
      snapshot = foldRunEvent(snapshot, folded, options);
    }
    return snapshot === undefined ? undefined : { snapshot, entries };
  }

  private async compact(userId: string, runId: string): Promise<void> {
    const folded = await this.fold(userId, runId);
    const head = folded?.entries[0];
    if (folded === undefined || head === undefined) return;
    const [, log] = this.keys.run(userId, runId);
    const checkpoint = `${CHECKPOINT_PREFIX}${JSON.stringify(folded.snapshot)}}`;
    try {
      await this.links.command.agentsocketCompactRunLog(
        log,
        createHash('sha1').update(head, 'utf8').digest('hex'),
        folded.entries.length,
        checkpoint,
        this.options.runTtlMs,
      );
    } catch (error) {
      throw toBrokerError(error);
    }
  }
}
