/**
 * The presence store of the in-process engine, shared by every node of one
 * `InProcessCluster`: each node's records of its connections and its load,
 * each with a deadline, as the Redis engine keeps them.
 *
 * Bounded: a user's records are only those of nodes that wrote them and not
 * yet past their deadline (a write prunes the user's expired records, a read
 * skips them), and at most one load per node; a node that leaves the cluster
 * takes its load along.
 */
import type { ConnectionRecord } from './presence-store.js';

interface StoredRecord {
  connectionId: string;
  node: string;
  deadline: number;
  snapshot: string;
}

export class MemoryPresence {
  /**
   * userId → the user's records, one per connection id. An array, not a map:
   * a user has a few connections, and a map per user was about 250 bytes of
   * every idle connection's heap. Replaced, never changed in place.
   */
  private readonly records = new Map<string, StoredRecord[]>();
  private readonly loads = new Map<string, { deadline: number; count: number }>();

  /** Replaces `node`'s records of the user, and drops the user's expired ones. */
  put(
    node: string,
    userId: string,
    records: readonly ConnectionRecord[],
    deadline: number,
    now: number,
  ): void {
    // Arrays of their exact size (`map`, `filter`, `concat`): one grown by
    // `push` reserves room for 17 records.
    const fresh = records.map(({ connectionId, snapshot }): StoredRecord => ({
      connectionId,
      node,
      deadline,
      snapshot,
    }));
    const others = (this.records.get(userId) ?? []).filter(
      (record) =>
        record.node !== node &&
        record.deadline > now &&
        // One record per connection id, the last written (as a map would keep it).
        !fresh.some((stored) => stored.connectionId === record.connectionId),
    );
    const kept = others.length === 0 ? fresh : others.concat(fresh);
    if (kept.length === 0) this.records.delete(userId);
    else this.records.set(userId, kept);
  }

  list(userId: string, now: number): ConnectionRecord[] {
    const list: ConnectionRecord[] = [];
    for (const record of this.records.get(userId) ?? []) {
      if (record.deadline > now) {
        list.push({
          node: record.node,
          connectionId: record.connectionId,
          snapshot: record.snapshot,
        });
      }
    }
    return list;
  }

  /** The user's unexpired records on every node: the `connections` of a publish. */
  countOf(userId: string, now: number): number {
    const current = this.records.get(userId);
    if (current === undefined) return 0;
    let count = 0;
    for (const record of current) if (record.deadline > now) count++;
    return count;
  }

  /** Records held for the user, expired ones included (for bounds tests). */
  storedOf(userId: string): number {
    return this.records.get(userId)?.length ?? 0;
  }

  putLoad(node: string, count: number, deadline: number): void {
    this.loads.set(node, { deadline, count });
  }

  loadsAt(now: number): Map<string, number> {
    const loads = new Map<string, number>();
    for (const [node, load] of this.loads) {
      if (load.deadline > now) loads.set(node, load.count);
      else this.loads.delete(node);
    }
    return loads;
  }

  /** `node` left: its figure and records go with it. */
  forget(node: string): void {
    this.loads.delete(node);
    for (const [userId, current] of this.records) {
      const kept = current.filter((record) => record.node !== node);
      if (kept.length === 0) this.records.delete(userId);
      else if (kept.length !== current.length) this.records.set(userId, kept);
    }
  }

  clear(): void {
    this.records.clear();
    this.loads.clear();
  }
}
