/**
 * The bus channels of a node on a Redis Cluster (broadcast, control, the
 * node's delivery reports): plain pub/sub, which a cluster carries to every
 * node, so one subscriber connection to any one master is enough. SUBSCRIBE
 * is awaited before the link counts as ready; when the connection ends, the
 * link subscribes again on a master of the current slot table, after
 * `reconnectDelay`. Bus messages are not stored: one published while the
 * link is down is not seen (as on one Redis).
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { errorMessage, reconnectDelay } from './links.js';
import type { ShardWatch } from './shard-watch.js';

export interface ClusterBusLinkOptions {
  channels: string[];
  redisOptions: RedisOptions;
  message(channel: string, message: string): void;
  /** The link became ready or stopped being ready. */
  changed(): void;
  logger: Logger | undefined;
}

export class ClusterBusLink {
  private client: Redis | undefined;
  private subscribed = false;
  /** Moving to another master after the one it was on went: still counted ready. */
  private moving = false;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(
    private readonly watch: ShardWatch,
    private readonly options: ClusterBusLinkOptions,
  ) {}

  /**
   * True while every bus channel is subscribed on a live connection, and
   * during the one immediate attempt to move to another master when that
   * connection ends (a failed master must not make the nodes that need only
   * the others unready).
   */
  get ready(): boolean {
    return this.subscribed || this.moving;
  }

  /** Subscribes on some master (not `avoid`); resolves whether or not it worked (it retries by itself). */
  async start(avoid?: string): Promise<void> {
    if (this.closed || this.client !== undefined) return;
    const master = this.watch.someMaster(avoid);
    if (master === undefined) {
      this.retryLater('no reachable master');
      return;
    }
    const client = new Redis({
      ...this.options.redisOptions,
      host: master.host,
      port: master.port,
      lazyConnect: true,
      autoResubscribe: false,
      retryStrategy: () => null,
    });
    this.client = client;
    client.on('error', () => undefined);
    client.on('message', (channel: string, message: string) => {
      if (!this.closed && this.client === client) this.options.message(channel, message);
    });
    client.on('end', () => {
      if (this.client !== client) return;
      this.client = undefined;
      const wasSubscribed = this.subscribed;
      this.subscribed = false;
      if (this.closed) return;
      if (!wasSubscribed) {
        this.options.changed();
        this.retryLater('bus link ended');
        return;
      }
      this.moving = true;
      void this.start(master.address).finally(() => {
        this.moving = false;
        if (this.subscribed) return;
        this.options.changed();
        this.retryLater('bus link ended');
      });
    });
    try {
      await client.connect();
      await client.subscribe(...this.options.channels);
      if (this.client !== client || this.closed) return;
      this.attempt = 0;
      this.setSubscribed(true);
    } catch (error) {
      if (this.client === client) client.disconnect();
      this.options.logger?.warn(
        { err: errorMessage(error), shard: master.address },
        'redis cluster: bus subscribe failed, retrying',
      );
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    this.subscribed = false;
    if (client === undefined) return;
    try {
      await client.quit();
    } catch {
      client.disconnect();
    }
  }

  private retryLater(reason: string): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.attempt++;
    if (this.attempt === 1) {
      this.options.logger?.warn({ reason }, 'redis cluster: bus link down, subscribing again');
    }
    this.timer = setTimeout(() => {
      void this.watch
        .refresh()
        .catch(() => undefined)
        .then(() => this.start());
    }, reconnectDelay(this.attempt));
    this.timer.unref?.();
  }

  private setSubscribed(value: boolean): void {
    if (this.subscribed === value) return;
    this.subscribed = value;
    this.options.changed();
  }
}
