/**
 * The shards of a Redis Cluster as one engine node sees them: the slot table
 * (`CLUSTER SLOTS`), one command connection per master, and each master's
 * identity, so every user step runs on a master whose identity the script is
 * told (RUN_GUARD, scripts.ts).
 *
 * Identity of a master: SHA-1 of its `run_id` and its `master_replid`, read
 * from the master itself, which must say `role:master`. The run id changes
 * when the process restarts; the replication id changes when a replica is
 * promoted (a failover, or a failback to a node that resynced from another).
 * A step passes the identity of the master it runs on, then those of every
 * other master that confirmed itself: a stream stamped by a master that is
 * still master with the same identity came here by a slot migration, which
 * copies keys whole (MIGRATE is synchronous), so it keeps its epoch. A stream
 * stamped by a master that is gone, demoted, restarted or promoted anew may
 * have lost its last writes (replication is asynchronous): it moves to a new
 * epoch, with `gap`, the retained history, never a reused seq. The same rule
 * as a restart of a single Redis (`persistence.ts`), one implementation.
 *
 * Steps are routed here, not by ioredis's Cluster client: a redirect (MOVED)
 * refreshes the table and re-probes the masters before the step runs again,
 * so a step never runs on a node with the identity of another one. ASK (a
 * slot being migrated) runs the step once on the target with ASKING;
 * TRYAGAIN (a user's keys split by an ongoing migration) retries shortly.
 */
import { createHash } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { BrokerUnavailableError } from '../broker.js';
import { parseClusterSlots, SLOT_COUNT, type SlotOwner } from './cluster-slots.js';
import { parseRunId } from './persistence.js';
import { ShardCounters, type ShardEvents } from './shard-counters.js';
import type { ScriptedRedis } from './scripts.js';

/** A step of one user's stream: the client of the user's master and RUN_GUARD's two arguments. */
export type UserStep<T> = (client: ScriptedRedis, guard: [string, string]) => Promise<T>;

/**
 * How often the slot table is read again and the masters probed, besides
 * every MOVED and every connection that ends: a slot that moved, or a shard
 * that failed over, while this node had nothing to send there is seen
 * within this long (and its followed channels move then).
 */
export const SLOTS_REFRESH_MS = 1_000;

/** Redirects and retries per step (MOVED, ASK, TRYAGAIN) before it fails. */
const MAX_STEP_ATTEMPTS = 8;

export interface ShardStats {
  /** `host:port` of the master. */
  address: string;
  /** The connection answers and the node confirmed it is master. */
  ready: boolean;
  /** Slots it serves. */
  slots: number;
  /** Times this node saw the shard's slots taken over without a proven handover. */
  failovers: number;
  /** Slots seen migrating to this master from another live one. */
  slotMoves: number;
}

export interface ShardWatchOptions {
  seeds: { host: string; port: number }[];
  /** Connection options (auth, TLS, timeouts) shared by every node connection. */
  redisOptions: RedisOptions;
  /** Registers the engine's scripts on a new client. */
  defineScripts(client: Redis): ScriptedRedis;
  /** Script sources, loaded on every master when it is probed (so ASKING + EVALSHA never misses). */
  scripts: string[];
  logger: Logger | undefined;
}

export interface ShardWatchListener {
  /** Slots whose master changed without a proven handover: the streams there must catch up. */
  failedOver(isAffected: (slot: number) => boolean): void;
  /** The slot table changed (a migration or a failover): subscriptions may have to move. */
  tableChanged(): void;
}

interface Shard {
  address: string;
  client: ScriptedRedis;
  /** Set once the node confirmed it is master; cleared when the connection ends. */
  identity: string | undefined;
  ended: boolean;
}

/** The MOVED / ASK / TRYAGAIN reply of a step, if it was one. */
function redirectOf(
  error: unknown,
): { kind: 'MOVED' | 'ASK' | 'TRYAGAIN'; address: string } | undefined {
  if (!(error instanceof Error)) return undefined;
  const match = /^(MOVED|ASK) \d+ (\S+)/.exec(error.message);
  if (match !== null) return { kind: match[1] as 'MOVED' | 'ASK', address: match[2]! };
  if (/^TRYAGAIN\b/.test(error.message)) return { kind: 'TRYAGAIN', address: '' };
  return undefined;
}

export class ShardWatch {
  private owners: string[] = new Array<string>(SLOT_COUNT).fill('');
  private readonly shards = new Map<string, Shard>();
  private readonly counters = new ShardCounters();
  /** The identity of each master as of the last table read (a connection that ends since clears its own). */
  private tableIdentities = new Map<string, string>();
  private refreshing: Promise<void> | undefined;
  private listener: ShardWatchListener | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private closed = false;

  constructor(private readonly options: ShardWatchOptions) {}

  async start(listener: ShardWatchListener): Promise<void> {
    this.listener = listener;
    this.timer = setInterval(() => void this.refresh().catch(() => undefined), SLOTS_REFRESH_MS);
    this.timer.unref?.();
    await this.refresh();
  }

  /**
   * Reads the slot table again and probes every master (one at a time per
   * node: concurrent calls share the refresh in flight). Rejects when no
   * node answered.
   */
  refresh(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.refreshing ??= this.readTable().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /** The confirmed master of `slot`, or undefined while it has none. */
  ownerOf(slot: number): SlotOwner | undefined {
    const shard = this.shards.get(this.owners[slot] ?? '');
    if (shard === undefined || shard.identity === undefined) return undefined;
    const [host, port] = splitAddress(shard.address);
    return { address: shard.address, host, port, ranges: [] };
  }

  /** Some confirmed master other than `avoid` (for plain pub/sub, which any master serves). */
  someMaster(avoid?: string): SlotOwner | undefined {
    for (const shard of this.shards.values()) {
      if (shard.identity === undefined || shard.ended || shard.address === avoid) continue;
      const [host, port] = splitAddress(shard.address);
      return { address: shard.address, host, port, ranges: [] };
    }
    return undefined;
  }

  /** Runs one step of the stream in `slot` on its master (see the file comment for redirects). */
  async step<T>(slot: number, step: UserStep<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let shard = this.confirmed(this.owners[slot] ?? '');
      if (shard === undefined) {
        await this.refresh().catch(() => undefined);
        shard = this.confirmed(this.owners[slot] ?? '');
        if (shard === undefined) {
          throw new BrokerUnavailableError(
            `redis unavailable: no reachable master for slot ${slot}`,
          );
        }
      }
      let asking = false;
      try {
        return await step(shard.client, this.guard(shard));
      } catch (error) {
        let redirect = redirectOf(error);
        if (redirect?.kind === 'ASK') {
          const target = this.confirmed(redirect.address);
          if (target !== undefined) {
            asking = true;
            try {
              // ASKING applies to the next command on this connection: both
              // are written now, back to back.
              void target.client.asking().catch(() => undefined);
              return await step(target.client, this.guard(target));
            } catch (askError) {
              redirect = redirectOf(askError);
              if (redirect === undefined || attempt >= MAX_STEP_ATTEMPTS) throw askError;
            }
          }
        }
        if (redirect === undefined || attempt >= MAX_STEP_ATTEMPTS) {
          if (redirect === undefined) void this.refreshSoon(error);
          throw error;
        }
        if (redirect.kind === 'TRYAGAIN' || asking) {
          await delay(Math.min(200, 10 * 2 ** attempt));
        } else {
          await this.refresh().catch(() => undefined);
        }
      }
    }
  }

  /** Every master's state and what this node saw happen to it. */
  stats(): ShardStats[] {
    const slots = new Map<string, number>();
    for (const owner of this.owners) slots.set(owner, (slots.get(owner) ?? 0) + 1);
    const addresses = new Set([...this.shards.keys(), ...this.counters.addresses()]);
    return [...addresses].sort().map((address) => ({
      address,
      ready: this.confirmed(address) !== undefined,
      slots: slots.get(address) ?? 0,
      failovers: this.counters.peek(address)?.failovers ?? 0,
      slotMoves: this.counters.peek(address)?.slotMoves ?? 0,
    }));
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await Promise.all([...this.shards.values()].map((shard) => quit(shard.client)));
    this.shards.clear();
  }

  private confirmed(address: string): Shard | undefined {
    const shard = this.shards.get(address);
    return shard !== undefined && shard.identity !== undefined && !shard.ended ? shard : undefined;
  }

  /** RUN_GUARD's arguments for a step on `shard`: its identity first, then the other masters'. */
  private guard(shard: Shard): [string, string] {
    const identities = [shard.identity!];
    for (const other of this.shards.values()) {
      if (other !== shard && other.identity !== undefined && !other.ended) {
        identities.push(other.identity);
      }
    }
    // Never proven: replication is asynchronous, so a promoted replica may
    // lack acknowledged writes whatever the persistence settings say.
    return [identities.join(','), '0'];
  }

  /** A step failed on a dead or wrong connection: read the table again, in the background. */
  private async refreshSoon(error: unknown): Promise<void> {
    if (error instanceof BrokerUnavailableError) return;
    if (
      error instanceof Error &&
      error.name === 'ReplyError' &&
      !/^CLUSTERDOWN/.test(error.message)
    ) {
      return;
    }
    await this.refresh().catch(() => undefined);
  }

  private async readTable(): Promise<void> {
    const { reply, host } = await this.readSlots();
    const { owners, masters } = parseClusterSlots(reply, host);
    const before = this.tableIdentities;
    const previousOwners = this.owners;
    // Forget masters that are masters no more (their connection is closed).
    const wanted = new Set(masters.map((m) => m.address));
    for (const [address, shard] of this.shards) {
      if (!wanted.has(address) || shard.ended) {
        this.shards.delete(address);
        void quit(shard.client);
      }
    }
    await Promise.all(masters.map((master) => this.probe(master)));
    if (this.closed) return;
    this.owners = owners;
    this.tableIdentities = new Map();
    for (const [address, shard] of this.shards) {
      if (shard.identity !== undefined) this.tableIdentities.set(address, shard.identity);
    }
    this.compare(previousOwners, before);
  }

  /** Reads `CLUSTER SLOTS` from a master connection, else from each seed in turn. */
  private async readSlots(): Promise<{ reply: unknown; host: string }> {
    const errors: string[] = [];
    for (const shard of this.shards.values()) {
      if (shard.ended) continue;
      try {
        const reply = await shard.client.call('CLUSTER', 'SLOTS');
        return { reply, host: splitAddress(shard.address)[0] };
      } catch (error) {
        errors.push(error instanceof Error ? error.message : String(error));
      }
    }
    for (const seed of this.options.seeds) {
      const client = new Redis({
        ...this.options.redisOptions,
        host: seed.host,
        port: seed.port,
        lazyConnect: true,
        retryStrategy: () => null,
      });
      client.on('error', () => undefined);
      try {
        await client.connect();
        return { reply: await client.call('CLUSTER', 'SLOTS'), host: seed.host };
      } catch (error) {
        errors.push(error instanceof Error ? error.message : String(error));
      } finally {
        client.disconnect();
      }
    }
    throw new BrokerUnavailableError(
      `redis cluster unreachable: ${errors.at(-1) ?? 'no seed node answered'}`,
    );
  }

  /** Connects to `master` if needed and (re)reads its identity; a node that is not master gets none. */
  private async probe(master: SlotOwner): Promise<void> {
    let shard = this.shards.get(master.address);
    if (shard === undefined) {
      const client = this.options.defineScripts(
        new Redis({
          ...this.options.redisOptions,
          host: master.host,
          port: master.port,
          lazyConnect: true,
          // A connection that ends is replaced by the next refresh, probed anew.
          retryStrategy: () => null,
        }),
      );
      const created: Shard = { address: master.address, client, identity: undefined, ended: false };
      client.on('error', () => undefined);
      client.on('end', () => {
        created.ended = true;
        created.identity = undefined;
        if (!this.closed) this.listener?.tableChanged();
        void this.refreshLater();
      });
      this.shards.set(master.address, created);
      shard = created;
    }
    const client = shard.client;
    try {
      if (client.status === 'wait') {
        await client.connect();
        await Promise.all(this.options.scripts.map((lua) => client.script('LOAD', lua)));
      }
      const [server, replication] = await Promise.all([
        client.info('server'),
        client.info('replication'),
      ]);
      const runId = parseRunId(server);
      const replId = /^master_replid:([0-9a-f]+)\s*$/m.exec(replication)?.[1];
      const role = /^role:(\w+)\s*$/m.exec(replication)?.[1];
      if (runId === undefined || replId === undefined || role !== 'master') {
        shard.identity = undefined;
        return;
      }
      const identity = createHash('sha1').update(`${runId}:${replId}`).digest('hex').slice(0, 16);
      if (shard.identity !== undefined && shard.identity !== identity) {
        this.options.logger?.warn(
          { shard: shard.address },
          'redis cluster: a master changed identity (restart or promotion)',
        );
      }
      shard.identity = identity;
    } catch (error) {
      shard.identity = undefined;
      this.options.logger?.warn(
        { shard: master.address, err: error instanceof Error ? error.message : String(error) },
        'redis cluster: a master did not answer its probe',
      );
    }
  }

  /**
   * Counts what changed between two tables: a slot whose owner identity
   * changed while the former owner is still master with that identity moved
   * (a migration); any other change is a failover of the former owner.
   */
  private compare(previousOwners: string[], before: Map<string, string>): void {
    const failed = new Set<number>();
    const movedTo = new Map<string, number>();
    let changed = false;
    for (let slot = 0; slot < SLOT_COUNT; slot++) {
      const from = previousOwners[slot]!;
      const fromIdentity = before.get(from);
      if (from === '' || fromIdentity === undefined) {
        if (from !== this.owners[slot]) changed = true;
        continue;
      }
      const to = this.owners[slot]!;
      if (to === from && this.shards.get(to)?.identity === fromIdentity) continue;
      changed = true;
      if (this.confirmed(from)?.identity === fromIdentity) {
        movedTo.set(to, (movedTo.get(to) ?? 0) + 1);
      } else {
        failed.add(slot);
      }
    }
    const failedShards = new Set([...failed].map((slot) => previousOwners[slot]!));
    for (const address of failedShards) this.count(address).failovers++;
    for (const [address, slots] of movedTo) this.count(address).slotMoves += slots;
    if (movedTo.size > 0) {
      this.options.logger?.info(
        { to: Object.fromEntries(movedTo) },
        'redis cluster: slots migrated between live masters: their streams keep their epoch',
      );
    }
    if (failedShards.size > 0) {
      this.options.logger?.warn(
        { shards: [...failedShards], slots: failed.size },
        'redis cluster: shard failover seen: its streams move to a new epoch',
      );
      this.listener?.failedOver((slot) => failed.has(slot));
    }
    if (changed) this.listener?.tableChanged();
  }

  private count(address: string): ShardEvents {
    return this.counters.of(address);
  }

  /** After a connection ended: refresh until the table has a master again for every slot. */
  private async refreshLater(): Promise<void> {
    for (let attempt = 1; !this.closed && attempt <= 100; attempt++) {
      await delay(Math.min(1_000, 50 * attempt));
      if (this.closed) return;
      try {
        await this.refresh();
        if (this.owners.every((owner) => this.confirmed(owner) !== undefined)) return;
      } catch {
        // unreachable: try again
      }
    }
  }
}

function splitAddress(address: string): [string, number] {
  const colon = address.lastIndexOf(':');
  return [address.slice(0, colon), Number(address.slice(colon + 1))];
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref?.());
}

async function quit(client: Redis): Promise<void> {
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}
