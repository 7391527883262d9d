/**
 * What a node knows of the other nodes, through the engine's presence store:
 * the connection directory (`GET /v1/users/{id}/connections` across nodes)
 * and connection counts (a broadcast's reach). The same records give every
 * publish its count of the user's open connections
 * (`PublishOutcome.connections`). With a lone memory node the store holds
 * this node's records only.
 *
 * This node's records are rewritten on every open and close of a user's
 * connection and refreshed every `PRESENCE_REFRESH_MS`, so the records of a
 * node that died without closing (SIGKILL) vanish within `PRESENCE_TTL_MS`.
 */
import type { Logger } from 'pino';
import type { ConnectionRecord, PresenceStore } from '../broker/presence-store.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { Supervisor } from '../tasks/supervisor.js';
import type { Connection } from './connection.js';
import type { ConnectionSnapshot } from './gateway-types.js';
import { PresenceWriter } from './presence-writer.js';
import type { ConnectionRegistry } from './registry.js';

const PRESENCE_TTL_MS = 30_000;
const PRESENCE_REFRESH_MS = 10_000;
/** This node's connection count in the presence store: written every second, valid for five. */
const NODE_LOAD_TTL_MS = 5_000;
const NODE_LOAD_REFRESH_MS = 1_000;

export interface ClusterDirectoryContext {
  presence: PresenceStore;
  nodeId: string;
  registry: ConnectionRegistry<Connection>;
  supervisor: Supervisor;
  logger: Logger;
  metrics: GatewayMetrics;
}

export class ClusterDirectory {
  private readonly writer: PresenceWriter;

  constructor(private readonly ctx: ClusterDirectoryContext) {
    const { presence, supervisor, registry } = ctx;
    this.writer = new PresenceWriter({
      write: (userId) => this.writePresence(userId),
      onError: (userId, error) => {
        ctx.metrics.brokerErrors.inc({ op: 'put_connections' });
        ctx.logger.warn(
          { userId, err: (error as Error).message },
          'connection directory not written',
        );
      },
    });
    supervisor.add({
      name: 'node-load',
      intervalMs: NODE_LOAD_REFRESH_MS,
      run: () => presence.putNodeLoad(registry.connectionCount, NODE_LOAD_TTL_MS),
    });
    supervisor.add({
      name: 'connection-directory',
      intervalMs: PRESENCE_REFRESH_MS,
      run: () => this.writer.refresh([...registry.userIds()]),
    });
  }

  /** The user's connections on this node changed: rewrite its records. */
  touch(userId: string): void {
    void this.writer.touch(userId);
  }

  /** The user's connections on the other nodes, as they last recorded them. Rejects when the engine fails. */
  async remoteConnections(userId: string): Promise<ConnectionSnapshot[]> {
    const remote: ConnectionSnapshot[] = [];
    for (const record of await this.ctx.presence.listConnections(userId)) {
      if (record.node === this.ctx.nodeId) continue; // this node's own are read live
      const snapshot = parseSnapshot(record.snapshot);
      if (snapshot !== undefined) remote.push(snapshot);
    }
    return remote;
  }

  /**
   * Connections a broadcast reached: this node's open connections plus the
   * other nodes' last counts (at most `NODE_LOAD_REFRESH_MS` old).
   */
  async broadcastReach(): Promise<number> {
    let reach = 0;
    this.ctx.registry.forEach((connection) => {
      if (connection.state === 'open') reach++;
    });
    let loads: Map<string, number>;
    try {
      loads = await this.ctx.presence.nodeLoads();
    } catch (error) {
      // The broadcast went out; only the other nodes' count is unknown. Say what is known.
      this.ctx.logger.warn({ err: (error as Error).message }, 'node loads unavailable');
      return reach;
    }
    for (const [node, connections] of loads) if (node !== this.ctx.nodeId) reach += connections;
    return reach;
  }

  /** Replaces this node's records of the user in the presence store with the registry's. */
  private async writePresence(userId: string): Promise<void> {
    const records: ConnectionRecord[] = [];
    for (const connection of this.ctx.registry.connectionsOf(userId)) {
      if (connection.state !== 'open') continue;
      records.push({
        node: this.ctx.nodeId,
        connectionId: connection.id,
        snapshot: JSON.stringify(connection.snapshot()),
      });
    }
    await this.ctx.presence.putConnections(userId, records, PRESENCE_TTL_MS);
  }
}

function parseSnapshot(text: string): ConnectionSnapshot | undefined {
  try {
    const value = JSON.parse(text) as Partial<ConnectionSnapshot> | null;
    if (typeof value?.connectionId !== 'string' || typeof value.node !== 'string') return undefined;
    return value as ConnectionSnapshot;
  } catch {
    return undefined;
  }
}
