/**
 * What a node saw happen to each shard of a Redis Cluster (failovers, slots
 * migrated to it), by master address. Addresses come and go (a failed
 * master's address leaves the slot table, and containers get new ones), so
 * the map is bounded: past `limit` addresses, the one first seen is
 * forgotten.
 */
export interface ShardEvents {
  failovers: number;
  slotMoves: number;
}

/** Addresses remembered by default: far more masters than a cluster has. */
export const SHARD_COUNTERS_LIMIT = 1_024;

export class ShardCounters {
  private readonly byAddress = new Map<string, ShardEvents>();

  constructor(private readonly limit = SHARD_COUNTERS_LIMIT) {}

  /** The counters of `address`, created at zero (evicting the oldest past the limit). */
  of(address: string): ShardEvents {
    let events = this.byAddress.get(address);
    if (events === undefined) {
      if (this.byAddress.size >= this.limit) {
        this.byAddress.delete(this.byAddress.keys().next().value!);
      }
      events = { failovers: 0, slotMoves: 0 };
      this.byAddress.set(address, events);
    }
    return events;
  }

  /** The counters of `address` if it was seen, without creating them. */
  peek(address: string): ShardEvents | undefined {
    return this.byAddress.get(address);
  }

  addresses(): IterableIterator<string> {
    return this.byAddress.keys();
  }

  get size(): number {
    return this.byAddress.size;
  }
}
