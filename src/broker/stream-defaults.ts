/** Engine defaults shared by the engines, the gateway options and the CLI. */
import { DEFAULT_RUN_SNAPSHOT_MAX_BYTES } from '../runs/run-snapshot.js';

export const HISTORY_DEFAULTS = { historySize: 1000, historyTtlMs: 3_600_000 } as const;

/** Run snapshots (`run-store.ts`): kept beside the history, with their own bounds. */
export const RUN_DEFAULTS = {
  /** A run's snapshot lives 24 h after its last event. */
  runTtlMs: 86_400_000,
  /** Size cap of one snapshot's JSON: 4 MiB. */
  runSnapshotMaxBytes: DEFAULT_RUN_SNAPSHOT_MAX_BYTES,
  /** Runs kept per user; a new one drops the oldest. */
  maxRunsPerUser: 100,
  /** Memory engine: bytes of all snapshots; least recently updated runs dropped past it. */
  maxRunBytes: 256 * 1024 * 1024,
} as const;
