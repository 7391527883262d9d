/**
 * The presence store on Redis: per user, a hash of connection id ->
 * `node\ndeadline\nsnapshot` under the user's hash tag (so the publish script
 * counts it in the same step), and one hash of node id -> `deadline\ncount`.
 * Hash fields have no TTL of their own before Redis 7.4, so each value
 * carries its deadline and every write prunes what is past it.
 */
import type { ConnectionRecord, PresenceStore } from '../presence-store.js';
import type { RedisKeys } from './keys.js';
import type { EngineLinks } from './engine-links.js';
import { toBrokerError } from './links.js';
import { decodeLoads, decodeRecord } from './wire.js';

function positiveTtl(ttlMs: number): number {
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) {
    throw new RangeError(`RedisBroker: ttlMs must be a positive integer, got ${String(ttlMs)}`);
  }
  return ttlMs;
}

export class RedisPresence implements PresenceStore {
  constructor(
    private readonly links: EngineLinks,
    private readonly keys: RedisKeys,
    private readonly nodeId: string,
    private readonly clock: () => number,
  ) {}

  /**
   * Replaces this node's records in the user's directory (one script: prune,
   * write, refresh the hash's TTL). Bounded: a user's directory holds at most
   * its connections on live nodes, plus records not yet past their deadline.
   */
  async putConnections(
    userId: string,
    records: readonly ConnectionRecord[],
    ttlMs: number,
  ): Promise<void> {
    const command = this.links.command;
    const ttl = positiveTtl(ttlMs);
    const now = this.clock();
    const args: (string | number)[] = [this.nodeId, now, now + ttl, ttl];
    for (const record of records) args.push(record.connectionId, record.snapshot);
    try {
      this.links.holdCommands(userId);
      await command.agentsocketPutConnections(this.keys.connections(userId), ...args);
    } catch (error) {
      throw toBrokerError(error);
    }
  }

  /** Every node's records of the user whose deadline has not passed. */
  async listConnections(userId: string): Promise<ConnectionRecord[]> {
    const all = await this.readHash(this.keys.connections(userId));
    const now = this.clock();
    const records: ConnectionRecord[] = [];
    for (const [connectionId, value] of Object.entries(all)) {
      const record = decodeRecord(connectionId, value, now);
      if (record !== undefined) records.push(record);
    }
    return records;
  }

  /**
   * Writes this node's figure and drops the figures of nodes past their
   * deadline (dead nodes), in one script: the hash holds at most the live
   * nodes, and a figure is pruned only on what the hash holds at that moment.
   * The hash's TTL is refreshed: it is gone with the last live node.
   */
  async putNodeLoad(connections: number, ttlMs: number): Promise<void> {
    const command = this.links.command;
    const ttl = positiveTtl(ttlMs);
    if (!Number.isSafeInteger(connections) || connections < 0) {
      throw new RangeError('connections must be an integer >= 0');
    }
    const now = this.clock();
    try {
      await command.agentsocketPutNodeLoad(
        this.keys.nodeLoads,
        this.nodeId,
        now,
        now + ttl,
        connections,
        ttl,
      );
    } catch (error) {
      throw toBrokerError(error);
    }
  }

  async nodeLoads(): Promise<Map<string, number>> {
    return decodeLoads(await this.readHash(this.keys.nodeLoads), this.clock());
  }

  private async readHash(key: string): Promise<Record<string, string>> {
    const command = this.links.command;
    try {
      return await command.hgetall(key);
    } catch (error) {
      throw toBrokerError(error);
    }
  }
}
