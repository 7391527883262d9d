/**
 * A node's own supervised tasks (the cluster directory adds its own):
 * heartbeats and token lifetimes of its connections, ticket and history
 * expiry, and the broker's health for readiness.
 */
import type { TicketStore } from '../auth/ticket-store.js';
import type { Broker } from '../broker/broker.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { Supervisor } from '../tasks/supervisor.js';
import type { Connection } from './connection.js';
import type { ResolvedOptions } from './options.js';
import type { ConnectionRegistry } from './registry.js';

export function addNodeTasks(
  supervisor: Supervisor,
  registry: ConnectionRegistry<Connection>,
  broker: Broker,
  tickets: TicketStore,
  options: ResolvedOptions,
  metrics: GatewayMetrics,
): void {
  const sweepEvery = Math.max(10, Math.min(1000, Math.floor(options.heartbeatMs / 2)));
  supervisor.add({
    name: 'heartbeat-sweep',
    intervalMs: sweepEvery,
    critical: true,
    run: () => {
      const now = Date.now();
      registry.forEach((connection) => connection.sweep(now));
    },
  });
  supervisor.add({
    name: 'ticket-expiry',
    intervalMs: 10_000,
    run: async () => void (await tickets.sweep(Date.now())),
  });
  supervisor.add({
    name: 'history-expiry',
    intervalMs: Math.min(60_000, Math.max(100, Math.floor(options.historyTtlMs / 10))),
    run: async () => void (await broker.sweep(Date.now())),
  });
  supervisor.add({
    name: 'broker-health',
    intervalMs: 1000,
    critical: true,
    failureThreshold: 1,
    run: () => {
      const health = broker.health();
      metrics.persistenceProven.set(health.persistence?.proven === true ? 1 : 0);
      // Reset first: a shard that left the table leaves the metrics too.
      for (const gauge of [
        metrics.redisShardUp,
        metrics.redisShardSlots,
        metrics.redisShardFailovers,
        metrics.redisShardSlotMoves,
      ]) {
        gauge.reset();
      }
      for (const shard of health.shards ?? []) {
        metrics.redisShardUp.set({ shard: shard.address }, shard.ready ? 1 : 0);
        metrics.redisShardSlots.set({ shard: shard.address }, shard.slots);
        metrics.redisShardFailovers.set({ shard: shard.address }, shard.failovers);
        metrics.redisShardSlotMoves.set({ shard: shard.address }, shard.slotMoves);
      }
      if (!health.healthy) throw new Error(health.reason ?? 'broker unhealthy');
    },
  });
}
