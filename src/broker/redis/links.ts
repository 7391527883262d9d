/**
 * The two links of a Redis engine node (commands, and subscriptions), their
 * health, and how failures read: commands fail fast with
 * `BrokerUnavailableError` while Redis is unreachable (no offline queue, no
 * silent retry), and after the subscriber link comes back every channel is
 * subscribed again, awaited, before the followed streams catch up.
 *
 * Each connection of the command link first reads which Redis run it reached
 * and that run's persistence (`persistence.ts`); until then the link is not
 * ready and no step runs, so no script ever runs with the run of an earlier
 * connection (a Redis restarted under it).
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { BrokerUnavailableError, type BrokerHealth } from '../broker.js';
import { probeRun, type RedisRun } from './persistence.js';
import { HealthReporter, type EngineLinks } from './engine-links.js';
import { defineScripts, type ScriptedRedis } from './scripts.js';
import { TurnWrites } from './turn-writes.js';
import type { UserStep } from './shard-watch.js';

/** Redis errors that mean "not now" rather than "this command is wrong". */
const TRANSIENT_REPLY =
  /^(OOM|LOADING|READONLY|BUSY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|NOSCRIPT|MOVED|ASK)\b/;

/**
 * How often a ready command link reads the persistence settings again: a
 * `CONFIG SET appendfsync everysec` at run time is seen within this long.
 */
export const PERSISTENCE_REFRESH_MS = 5_000;

/** Reconnect delay: exponential from 50 ms to 2 s, with ±20 % jitter. */
export function reconnectDelay(attempt: number): number {
  const base = Math.min(2_000, 50 * 2 ** Math.min(attempt, 10));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

/**
 * What may be logged of an error: its message. Never the error object: an
 * ioredis reply error carries `command.args`, which for AUTH is the password.
 */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Maps a client error to the contract's error: the engine could not do the step. */
export function toBrokerError(error: unknown): Error {
  if (error instanceof BrokerUnavailableError) return error;
  if (error instanceof Error) {
    if (error.name === 'ReplyError' && !TRANSIENT_REPLY.test(error.message)) return error;
    return new BrokerUnavailableError(`redis unavailable: ${error.message}`);
  }
  return new BrokerUnavailableError('redis unavailable');
}

type LinkName = 'command' | 'subscriber';

/** What the links tell the engine that owns them. */
export interface LinkListener {
  /** Every channel the subscriber link must hold, shared and per user. */
  channels(): string[];
  /** The subscriber link holds every channel again: catch the followed streams up. */
  resubscribed(): void;
  message(channel: string, message: string): void;
  healthChanged(health: BrokerHealth): void;
  /** The command link reached another Redis run than before (a restart). */
  runChanged(previous: RedisRun, current: RedisRun): void;
  /** These user channels were subscribed again (Redis Cluster: a move): catch them up. */
  restored(channels: string[]): void;
}

export interface RedisLinksOptions {
  url: string;
  nodeId: string;
  commandTimeoutMs: number;
  logger: Logger | undefined;
}

export class RedisLinks implements EngineLinks {
  private commandLink: ScriptedRedis | undefined;
  private subscriberLink: Redis | undefined;
  private readonly states: Record<LinkName, string> = {
    command: 'connecting',
    subscriber: 'connecting',
  };
  /** Counts the subscriber link's connections: a restore of an older one is void. */
  private subscriberGeneration = 0;
  /** The subscribing of the subscriber link's latest connection; never rejects. */
  private subscribing: Promise<void> = Promise.resolve();
  /** Counts the command link's connections: a probe of an older one is void. */
  private commandGeneration = 0;
  /** The probe of the command link's latest connection; never rejects. */
  private probing: Promise<void> = Promise.resolve();
  /** The Redis run the command link is on, read when it connected. */
  private currentRun: RedisRun | undefined;
  private refreshTimer: ReturnType<typeof setInterval> | undefined;
  /** The last error logged per link, so a reconnect loop logs it once. */
  private readonly lastLinkError: Record<LinkName, string | undefined> = {
    command: undefined,
    subscriber: undefined,
  };
  private readonly healthReporter = new HealthReporter(() => this.health());
  private readonly turnWrites = new TurnWrites();
  private closed = false;
  private listener: LinkListener | undefined;

  constructor(private readonly options: RedisLinksOptions) {}

  /**
   * Connects both links. Resolves once the first attempt of each settled,
   * whether Redis answered or not; the links keep reconnecting
   * (`reconnectDelay`) and `health()` says why the engine is not usable.
   */
  async start(listener: LinkListener): Promise<void> {
    this.listener = listener;
    const { url, nodeId, commandTimeoutMs, logger } = this.options;
    const base: RedisOptions = {
      lazyConnect: true,
      // Fail fast while Redis is unreachable: a command is never parked in a
      // queue to run later, and one in flight when the link drops is rejected
      // at once. The caller sees BrokerUnavailableError and may retry (a
      // publish retried with the same id cannot be applied twice).
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      // Subscriptions are restored here, awaited, before the catch-up reads
      // history: ioredis's own resubscribe is not awaited, so a message
      // published between our history read and its SUBSCRIBE would be lost.
      autoResubscribe: false,
      commandTimeout: commandTimeoutMs,
      connectTimeout: Math.max(commandTimeoutMs, 1_000),
      retryStrategy: reconnectDelay,
    };
    const command = defineScripts(
      new Redis(url, { ...base, connectionName: `agentsocket-${nodeId}` }),
    );
    const subscriber = new Redis(url, { ...base, connectionName: `agentsocket-${nodeId}-sub` });
    this.commandLink = command;
    this.subscriberLink = subscriber;
    this.watch('command', command);
    this.watch('subscriber', subscriber);
    subscriber.on('message', (channel: string, message: string) => {
      if (!this.closed) listener.message(channel, message);
    });
    const attempts = await Promise.allSettled([command.connect(), subscriber.connect()]);
    attempts.forEach((attempt, i) => {
      if (attempt.status === 'fulfilled') return;
      logger?.warn(
        { err: errorMessage(attempt.reason), link: i === 0 ? 'command' : 'subscriber' },
        'redis broker: Redis unreachable at start, reconnecting',
      );
    });
    this.refreshTimer = setInterval(() => void this.refresh(command), PERSISTENCE_REFRESH_MS);
    this.refreshTimer.unref?.();
    // The subscriber's `ready` started subscribing the shared channels, the
    // command's probing the run.
    await Promise.all([this.subscribing, this.probing]);
  }

  /**
   * The command link, with the scripts; throws `BrokerUnavailableError` once
   * closed, and while the link is not ready (its run not probed yet).
   */
  get command(): ScriptedRedis {
    if (this.closed) throw new BrokerUnavailableError('redis broker closed');
    if (this.commandLink === undefined) throw new Error('RedisBroker: start() first');
    if (this.states.command !== 'ready') {
      throw new BrokerUnavailableError(`redis unavailable: command link ${this.states.command}`);
    }
    return this.commandLink;
  }

  /** The Redis run the command link is on (ready only once it is known). */
  get run(): RedisRun {
    if (this.currentRun === undefined) throw new BrokerUnavailableError('redis run not known yet');
    return this.currentRun;
  }

  /** One Redis holds every user: the step runs on the command link, with its run. */
  userStep<T>(_userId: string, step: UserStep<T>): Promise<T> {
    const command = this.command;
    const { runId, persistence } = this.run;
    return step(command, [runId, persistence.proven ? '1' : '0']);
  }

  /**
   * Holds the command link's writes to the end of the turn (`turn-writes.ts`);
   * nothing while it is not ready (a command then fails at once anyway).
   */
  holdCommands(_userId: string): void {
    if (this.commandLink !== undefined && this.states.command === 'ready') {
      this.turnWrites.hold(this.commandLink.stream);
    }
  }

  releaseHeld(): void {
    this.turnWrites.releaseNow();
  }

  /** One Redis: every user's step may share a call. */
  stepGroup(_userId: string): string {
    return '';
  }

  /** A SUBSCRIBE per handshake: held with the turn's others (`turn-writes.ts`). */
  async follow(channel: string): Promise<void> {
    const subscriber = this.subscriber;
    if (this.states.subscriber === 'ready') this.turnWrites.hold(subscriber.stream);
    await subscriber.subscribe(channel);
  }

  async unfollow(channel: string): Promise<void> {
    const subscriber = this.subscriberIfOpen;
    if (subscriber !== undefined && this.states.subscriber === 'ready') {
      this.turnWrites.hold(subscriber.stream);
    }
    await subscriber?.unsubscribe(channel);
  }

  /** The run last probed, if any (for health details, whether or not the link is up). */
  get lastRun(): RedisRun | undefined {
    return this.currentRun;
  }

  get subscriber(): Redis {
    if (this.closed) throw new BrokerUnavailableError('redis broker closed');
    if (this.subscriberLink === undefined) throw new Error('RedisBroker: start() first');
    return this.subscriberLink;
  }

  /** The subscriber link if there is one and the engine is open (for best-effort unsubscribes). */
  get subscriberIfOpen(): Redis | undefined {
    return this.closed ? undefined : this.subscriberLink;
  }

  health(): BrokerHealth {
    if (this.closed) return { healthy: false, reason: 'redis broker closed' };
    for (const name of ['command', 'subscriber'] as const) {
      if (this.states[name] !== 'ready') {
        return { healthy: false, reason: `redis ${name} link ${this.states[name]}` };
      }
    }
    return { healthy: true };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.refreshTimer);
    this.turnWrites.releaseNow();
    await Promise.all(
      [this.commandLink, this.subscriberLink].map(async (client) => {
        if (client === undefined) return;
        try {
          await client.quit();
        } catch {
          client.disconnect();
        }
      }),
    );
    this.reportHealth();
  }

  private watch(name: LinkName, client: Redis): void {
    const { logger } = this.options;
    client.on('error', (error: unknown) => {
      // The message only: a reply error carries its command, and AUTH's
      // arguments hold the password. Repeats (one per reconnect attempt) are
      // logged once until the link is ready again.
      const message = errorMessage(error);
      if (this.closed || this.lastLinkError[name] === message) return;
      this.lastLinkError[name] = message;
      logger?.warn({ err: message, link: name }, 'redis broker: link error');
    });
    client.on('close', () => this.setLink(name, 'closed'));
    client.on('reconnecting', () => this.setLink(name, 'reconnecting'));
    client.on('end', () => this.setLink(name, 'ended'));
    client.on('ready', () => {
      this.lastLinkError[name] = undefined;
      if (name === 'command') {
        this.setLink(name, 'probing');
        this.probing = this.probe(client, ++this.commandGeneration);
        return;
      }
      // Every `ready`, the first one included: subscribe the channels again.
      this.setLink(name, 'subscribing');
      this.subscribing = this.restoreSubscriptions(client, ++this.subscriberGeneration);
    });
  }

  /**
   * After the subscriber link (re)connects: subscribe every channel, and only
   * then catch every followed stream up from history, so nothing published
   * during the cut, or between the two steps, is missed. A SUBSCRIBE that
   * fails while the link stays up (a timeout) forces a reconnect, whose
   * `ready` tries again after `reconnectDelay`: the link never stays
   * half-subscribed.
   */
  private async restoreSubscriptions(client: Redis, generation: number): Promise<void> {
    const listener = this.listener;
    if (listener === undefined) return;
    const channels = listener.channels();
    try {
      await client.subscribe(...channels);
    } catch (error) {
      if (this.closed || generation !== this.subscriberGeneration) return;
      this.options.logger?.warn(
        { err: errorMessage(error) },
        'redis broker: subscribe failed, reconnecting',
      );
      if (client.status === 'ready') client.disconnect(true);
      return;
    }
    // A newer connection restores everything itself.
    if (this.closed || generation !== this.subscriberGeneration) return;
    listener.resubscribed();
    this.setLink('subscriber', 'ready');
    if (generation > 1) {
      this.options.logger?.info(
        { channels: channels.length },
        'redis broker: subscriptions restored',
      );
    }
  }

  /**
   * After the command link (re)connects: reads the run and its persistence,
   * logs them, tells the listener of a restart, and only then lets steps run.
   * A probe that fails while the link stays up forces a reconnect, as a
   * failed SUBSCRIBE does.
   */
  private async probe(client: Redis, generation: number): Promise<void> {
    let run: RedisRun;
    try {
      run = await probeRun(client);
    } catch (error) {
      if (this.closed || generation !== this.commandGeneration) return;
      this.options.logger?.warn(
        { err: errorMessage(error) },
        'redis broker: reading the Redis run failed, reconnecting',
      );
      if (client.status === 'ready') client.disconnect(true);
      return;
    }
    if (this.closed || generation !== this.commandGeneration) return;
    this.adopt(run);
    this.setLink('command', 'ready');
  }

  /** Reads the settings again on a ready link (a failure waits for the next turn). */
  private async refresh(client: Redis): Promise<void> {
    if (this.closed || this.states.command !== 'ready') return;
    const generation = this.commandGeneration;
    let run: RedisRun;
    try {
      run = await probeRun(client);
    } catch {
      return; // the link's own events report a link that is down
    }
    if (!this.closed && generation === this.commandGeneration) this.adopt(run);
  }

  /** Takes the run read from Redis: logs a change, tells the listener of a restart. */
  private adopt(run: RedisRun): void {
    const previous = this.currentRun;
    this.currentRun = run;
    const restarted = previous !== undefined && previous.runId !== run.runId;
    if (
      previous === undefined ||
      restarted ||
      previous.persistence.summary !== run.persistence.summary
    ) {
      const log = { runId: run.runId, persistenceProven: run.persistence.proven };
      if (run.persistence.proven) {
        this.options.logger?.info(log, `redis persistence: ${run.persistence.summary}`);
      } else {
        this.options.logger?.warn(log, `redis persistence: ${run.persistence.summary}`);
      }
    }
    if (restarted) this.listener?.runChanged(previous, run);
  }

  private setLink(name: LinkName, state: string): void {
    if (this.states[name] === state) return;
    const wasReady = this.states[name] === 'ready';
    this.states[name] = state;
    if (wasReady && !this.closed) {
      this.options.logger?.warn({ link: name, state }, 'redis broker: link lost');
    }
    this.reportHealth();
  }

  private reportHealth(): void {
    this.healthReporter.report(this.listener);
  }
}
