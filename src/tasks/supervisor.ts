/**
 * Supervises the gateway's background work (heartbeat sweep, history expiry,
 * ticket expiry, broker health): each task is named, runs on its interval,
 * has its last run, duration and failures recorded, and is restarted with
 * exponential backoff when it throws. A critical task that keeps failing
 * makes the node unready (`/readyz` 503).
 */
import type { Logger } from 'pino';
import type { GatewayMetrics } from '../observability/metrics.js';

export interface TaskDefinition {
  /** Stable name: metric label, log field, `/readyz` reason. */
  name: string;
  /** Pause between the end of one successful run and the start of the next. */
  intervalMs: number;
  run(): void | Promise<void>;
  /** A critical task failing `failureThreshold` times in a row makes the node unready. Default false. */
  critical?: boolean;
  /** Consecutive failures before the task counts as unhealthy. Default 3. */
  failureThreshold?: number;
}

export type TaskState = 'idle' | 'running' | 'backoff' | 'stopped';

export interface TaskSnapshot {
  name: string;
  state: TaskState;
  critical: boolean;
  healthy: boolean;
  runs: number;
  failures: number;
  consecutiveFailures: number;
  /** ms since the epoch of the last start, or null before the first. */
  lastRunAt: number | null;
  lastDurationMs: number | null;
  lastError: string | null;
}

export interface SupervisorOptions {
  logger?: Logger;
  metrics?: GatewayMetrics;
  /** First restart delay after a failure. Default 100 ms. */
  backoffBaseMs?: number;
  /** Longest restart delay. Default 30 s. */
  backoffMaxMs?: number;
}

interface TaskEntry {
  def: Required<Omit<TaskDefinition, 'run'>> & Pick<TaskDefinition, 'run'>;
  snapshot: TaskSnapshot;
  timer: ReturnType<typeof setTimeout> | null;
}

/** The restart delay after `consecutiveFailures` failures in a row: doubling, capped. */
export function restartDelay(consecutiveFailures: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, consecutiveFailures - 1));
}

export class Supervisor {
  private readonly tasks = new Map<string, TaskEntry>();
  private running = false;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;

  constructor(private readonly options: SupervisorOptions = {}) {
    this.backoffBaseMs = options.backoffBaseMs ?? 100;
    this.backoffMaxMs = options.backoffMaxMs ?? 30_000;
  }

  add(def: TaskDefinition): void {
    if (this.tasks.has(def.name)) throw new TypeError(`task ${def.name} is already supervised`);
    if (!Number.isFinite(def.intervalMs) || def.intervalMs <= 0) {
      throw new TypeError(`task ${def.name}: intervalMs must be a positive number`);
    }
    const entry: TaskEntry = {
      def: { critical: false, failureThreshold: 3, ...def },
      snapshot: {
        name: def.name,
        state: 'idle',
        critical: def.critical ?? false,
        healthy: true,
        runs: 0,
        failures: 0,
        consecutiveFailures: 0,
        lastRunAt: null,
        lastDurationMs: null,
        lastError: null,
      },
      timer: null,
    };
    this.tasks.set(def.name, entry);
    this.options.metrics?.taskHealthy.set({ task: def.name }, 1);
    if (this.running) this.schedule(entry, def.intervalMs);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    for (const entry of this.tasks.values()) this.schedule(entry, entry.def.intervalMs);
  }

  stop(): void {
    this.running = false;
    for (const entry of this.tasks.values()) {
      if (entry.timer) clearTimeout(entry.timer);
      entry.timer = null;
      entry.snapshot.state = 'stopped';
    }
  }

  snapshot(): TaskSnapshot[] {
    return [...this.tasks.values()].map((entry) => ({ ...entry.snapshot }));
  }

  /** Unhealthy critical tasks, as `/readyz` reasons. */
  unhealthyCritical(): string[] {
    return [...this.tasks.values()]
      .filter((entry) => entry.def.critical && !entry.snapshot.healthy)
      .map(
        (entry) =>
          `task ${entry.def.name} failed ${entry.snapshot.consecutiveFailures} times in a row: ${entry.snapshot.lastError ?? ''}`,
      );
  }

  private schedule(entry: TaskEntry, delayMs: number): void {
    if (!this.running) return;
    entry.timer = setTimeout(() => void this.runOnce(entry), delayMs);
    // Background work never keeps the process alive on its own.
    entry.timer.unref?.();
  }

  private async runOnce(entry: TaskEntry): Promise<void> {
    entry.timer = null;
    const snap = entry.snapshot;
    snap.state = 'running';
    snap.runs++;
    const started = Date.now();
    snap.lastRunAt = started;
    try {
      await entry.def.run();
      snap.lastDurationMs = Date.now() - started;
      if (snap.consecutiveFailures > 0) {
        this.options.logger?.info({ task: snap.name }, 'background task recovered');
      }
      snap.consecutiveFailures = 0;
      snap.healthy = true;
      snap.state = 'idle';
      this.options.metrics?.taskRuns.inc({ task: snap.name, outcome: 'ok' });
      this.options.metrics?.taskHealthy.set({ task: snap.name }, 1);
      this.schedule(entry, entry.def.intervalMs);
    } catch (error) {
      snap.lastDurationMs = Date.now() - started;
      snap.failures++;
      snap.consecutiveFailures++;
      snap.lastError = error instanceof Error ? error.message : String(error);
      snap.healthy = snap.consecutiveFailures < entry.def.failureThreshold;
      snap.state = 'backoff';
      const delay = restartDelay(snap.consecutiveFailures, this.backoffBaseMs, this.backoffMaxMs);
      this.options.metrics?.taskRuns.inc({ task: snap.name, outcome: 'error' });
      this.options.metrics?.taskHealthy.set({ task: snap.name }, snap.healthy ? 1 : 0);
      this.options.logger?.error(
        {
          task: snap.name,
          err: snap.lastError,
          consecutiveFailures: snap.consecutiveFailures,
          restartInMs: delay,
        },
        'background task failed; restarting with backoff',
      );
      this.schedule(entry, delay);
    }
  }
}
