/**
 * `TicketStore` on Redis, shared by every node: a ticket issued by node A
 * opens a socket on node B. A ticket lives in one key with `PX 30000` (Redis
 * expires it, so `sweep` has nothing to do) and is consumed with `GETDEL`, so
 * two nodes racing on one ticket cannot both win.
 *
 * The key is a SHA-256 of the ticket, never the ticket itself, so tickets do
 * not show up in key listings, SLOWLOG or MONITOR output as key names.
 *
 * @example
 * ```ts
 * const tickets = new RedisTicketStore({ url: 'redis://127.0.0.1:6379' });
 * ```
 */
import { createHash, randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { parseSeeds } from '../broker/redis/cluster-links.js';
import { BrokerUnavailableError } from '../broker/broker.js';
import { RedisKeys } from '../broker/redis/keys.js';
import type { VerifiedUser } from './authenticator.js';
import { TICKET_TTL_MS, type IssuedTicket, type TicketStore } from './ticket-store.js';

export interface RedisTicketStoreOptions {
  /** `redis://…` URL; the store opens (and `close` ends) its own connection. This or `cluster`. */
  url?: string;
  /**
   * Seed URLs of a Redis Cluster, instead of `url`. Each ticket is one key in
   * its own slot (the hash of the ticket spreads them over the shards).
   */
  cluster?: readonly string[];
  /** Prefix of the ticket keys. Default `'agentsocket'`. */
  keyPrefix?: string;
  /** A command with no answer within this rejects with `BrokerUnavailableError`. Default 2000. */
  commandTimeoutMs?: number;
  /** The clock for `expiresAt`. Default `Date.now`. */
  clock?: () => number;
}

function hashTicket(ticket: string): string {
  return createHash('sha256').update(ticket).digest('base64url');
}

export class RedisTicketStore implements TicketStore {
  // Redis or Cluster: the same commands; typed as Redis (see the constructor).
  private readonly client: Redis;
  private readonly keys: RedisKeys;
  private readonly clock: () => number;

  constructor(options: RedisTicketStoreOptions) {
    const cluster = options?.cluster;
    if (cluster !== undefined) {
      if (options.url !== undefined || !Array.isArray(cluster) || cluster.length === 0) {
        throw new TypeError('RedisTicketStore: give url or a non-empty cluster list, not both');
      }
    } else if (typeof options?.url !== 'string' || !/^rediss?:\/\//.test(options.url)) {
      throw new TypeError('RedisTicketStore: url must start with redis:// or rediss://');
    }
    const prefix = options.keyPrefix ?? 'agentsocket';
    if (!/^[A-Za-z0-9._:-]{1,64}$/.test(prefix)) {
      throw new TypeError('RedisTicketStore: keyPrefix must be 1-64 characters of [A-Za-z0-9._:-]');
    }
    const timeout = options.commandTimeoutMs ?? 2_000;
    if (!Number.isSafeInteger(timeout) || timeout < 1) {
      throw new RangeError('RedisTicketStore: commandTimeoutMs must be a positive integer');
    }
    this.keys = new RedisKeys(prefix);
    this.clock = options.clock ?? Date.now;
    const clientOptions = {
      // Fail fast while Redis is down: a ticket is issued or refused, never queued.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: timeout,
      connectionName: 'agentsocket-tickets',
    };
    if (cluster !== undefined) {
      const { seeds, auth } = parseSeeds(cluster);
      // A Cluster has the commands used here (SET, GETDEL, QUIT) with the
      // same signatures as a single-node client.
      this.client = new Cluster(seeds, {
        enableOfflineQueue: false,
        redisOptions: { ...clientOptions, ...auth },
      }) as unknown as Redis;
    } else {
      this.client = new Redis(options.url!, clientOptions);
    }
    // Errors surface on the commands; the event only needs a listener.
    this.client.on('error', () => undefined);
  }

  /** Resolves when the connection is ready (optional: commands fail fast until then). */
  async ready(): Promise<void> {
    if (this.client.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const onReady = (): void => {
        this.client.off('end', onEnd);
        resolve();
      };
      const onEnd = (): void => {
        this.client.off('ready', onReady);
        reject(new BrokerUnavailableError('redis ticket store: connection ended'));
      };
      this.client.once('ready', onReady);
      this.client.once('end', onEnd);
    });
  }

  async issue(user: VerifiedUser): Promise<IssuedTicket> {
    const ticket = randomBytes(24).toString('base64url');
    const expiresAt = this.clock() + TICKET_TTL_MS;
    const value = JSON.stringify({ userId: user.userId, expiresAt: user.expiresAt });
    try {
      await this.client.set(this.keys.ticket(hashTicket(ticket)), value, 'PX', TICKET_TTL_MS);
    } catch (error) {
      throw new BrokerUnavailableError(`redis ticket store: ${(error as Error).message}`);
    }
    return { ticket, expiresAt };
  }

  async consume(ticket: string): Promise<VerifiedUser | null> {
    if (typeof ticket !== 'string' || ticket.length === 0 || ticket.length > 256) return null;
    let value: string | null;
    try {
      value = await this.client.getdel(this.keys.ticket(hashTicket(ticket)));
    } catch (error) {
      throw new BrokerUnavailableError(`redis ticket store: ${(error as Error).message}`);
    }
    if (value === null) return null;
    const parsed: unknown = JSON.parse(value);
    if (typeof parsed !== 'object' || parsed === null) return null;
    const { userId, expiresAt } = parsed as Record<string, unknown>;
    if (typeof userId !== 'string') return null;
    return { userId, expiresAt: typeof expiresAt === 'number' ? expiresAt : null };
  }

  /** Redis expires tickets itself (`PX`): nothing to sweep. */
  async sweep(_now: number): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }
}
