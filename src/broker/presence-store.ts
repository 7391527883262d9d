/**
 * The presence store seam: which connections each node holds, and how many,
 * shared by every node and expiring by itself, so that the records of a node
 * that died vanish. One of the three parts of a `Broker` (with
 * `stream-engine.ts` and `cluster-bus.ts`). The stream engine reads the
 * user's count of it in every publish (`PublishOutcome.connections`).
 */

/** One connection of a user as a node recorded it for operators on other nodes. */
export interface ConnectionRecord {
  node: string;
  connectionId: string;
  /** The gateway's snapshot of the connection, serialized; opaque to the engine. */
  snapshot: string;
}

export interface PresenceStore {
  /**
   * Replaces this node's records of `userId` with `records` (an empty list
   * removes them). Each record expires `ttlMs` after it was written unless
   * written again.
   */
  putConnections(
    userId: string,
    records: readonly ConnectionRecord[],
    ttlMs: number,
  ): Promise<void>;
  /** Every node's unexpired records of `userId`. */
  listConnections(userId: string): Promise<ConnectionRecord[]>;
  /** Records how many connections this node holds; expires `ttlMs` after it was written. */
  putNodeLoad(connections: number, ttlMs: number): Promise<void>;
  /** Every node's unexpired figure, by node id. */
  nodeLoads(): Promise<Map<string, number>>;
}
