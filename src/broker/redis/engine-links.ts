/**
 * What the parts of the Redis engine (stream, runs, bus, presence) need of
 * its links, whichever Redis is behind them: one Redis (`links.ts`) or a
 * Redis Cluster (`cluster-links.ts`).
 */
import type { BrokerHealth } from '../broker.js';
import type { LinkListener } from './links.js';
import type { RedisRun } from './persistence.js';
import type { ScriptedRedis } from './scripts.js';
import type { UserStep } from './shard-watch.js';

export interface EngineLinks {
  /**
   * The client for every command that is not a step of a user's stream
   * (presence, runs, acks, the bus); throws `BrokerUnavailableError` while
   * the engine cannot take commands.
   */
  readonly command: ScriptedRedis;
  /**
   * Runs one step of a user's stream (the publish and read scripts) on the
   * Redis that holds the user, with RUN_GUARD's two arguments for that Redis.
   */
  userStep<T>(userId: string, step: UserStep<T>): Promise<T>;
  /**
   * Users with the same group can share one step (a batch of publishes):
   * one group for one Redis, the user's hash slot on a cluster.
   */
  stepGroup(userId: string): string;
  /**
   * Holds the writes of the commands that follow in this turn, for the
   * Redis that holds `userId`, to the end of the turn (`turn-writes.ts`):
   * for steps that come in bursts (reads, acks, presence); a publish call
   * lets the hold go (`releaseHeld`). A Redis Cluster does not hold (each shard's client would
   * need its own; not measured there).
   */
  holdCommands(userId: string): void;
  /**
   * Lets what `holdCommands` held go now: called as a publish call is
   * written, so that it never waits behind a hold made in the check phase
   * (which ends only in the next turn's).
   */
  releaseHeld(): void;
  /** Subscribes a user's channel (SUBSCRIBE, or SSUBSCRIBE on its shard). */
  follow(channel: string): Promise<void>;
  /** Unsubscribes it; best effort when the link is down. */
  unfollow(channel: string): Promise<void>;
  /** The Redis run, when one Redis (undefined on a cluster, or before the first probe). */
  readonly lastRun: RedisRun | undefined;
  health(): BrokerHealth;
  start(listener: LinkListener): Promise<void>;
  close(): Promise<void>;
}

/**
 * Tells the listener of a change of health only, not of every link event
 * that leaves it as it was (both link classes report through one).
 */
export class HealthReporter {
  private lastHealthy = false;

  constructor(private readonly read: () => BrokerHealth) {}

  report(listener: LinkListener | undefined): void {
    const health = this.read();
    if (health.healthy === this.lastHealthy) return;
    this.lastHealthy = health.healthy;
    listener?.healthChanged(health);
  }
}
