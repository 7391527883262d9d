/**
 * Reading runs (protocol 1.1, "Run snapshots"): a run's snapshot and a
 * user's recent runs, from the engine's run store (`broker/run-store.ts`),
 * with the arguments checked at the edge and engine failures mapped once
 * (`broker-failures.ts`).
 */
import type { RunStore } from '../broker/run-store.js';
import { GatewayError } from '../errors.js';
import { REF_PATTERN } from '../protocol/event-input.js';
import { isValidUserId } from '../protocol/user-id.js';
import type { RunSnapshot } from '../runs/run-types.js';
import type { BrokerFailures } from './broker-failures.js';

/** Runs `listRuns` answers when no limit is given. */
export const DEFAULT_RUN_LIST_LIMIT = 20;
/** The most runs one `listRuns` answers. */
export const MAX_RUN_LIST_LIMIT = 100;

export class RunReader {
  constructor(
    private readonly runs: RunStore,
    private readonly failures: BrokerFailures,
  ) {}

  async readRun(userId: string, runId: string): Promise<RunSnapshot | null> {
    checkUserId(userId);
    if (typeof runId !== 'string' || !REF_PATTERN.test(runId)) {
      throw new GatewayError('bad_request', `runId must match ${String(REF_PATTERN)}`, 'runId');
    }
    try {
      return await this.runs.readRun(userId, runId);
    } catch (error) {
      throw this.failures.map('read_run', error);
    }
  }

  async listRuns(userId: string, limit: number = DEFAULT_RUN_LIST_LIMIT): Promise<RunSnapshot[]> {
    checkUserId(userId);
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_RUN_LIST_LIMIT) {
      throw new GatewayError(
        'bad_request',
        `limit must be an integer from 1 to ${MAX_RUN_LIST_LIMIT}`,
        'limit',
      );
    }
    try {
      return await this.runs.listRuns(userId, limit);
    } catch (error) {
      throw this.failures.map('list_runs', error);
    }
  }
}

function checkUserId(userId: string): void {
  if (!isValidUserId(userId))
    throw new GatewayError('bad_request', 'userId is malformed', 'userId');
}
