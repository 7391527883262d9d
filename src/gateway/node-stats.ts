/**
 * A node's counters for `stats()`: events (published, duplicates, delivered,
 * replayed, acked, broadcasts) and failures by kind. The Prometheus metrics
 * are kept beside them by whoever counts (`GatewayMetrics`); these are the
 * figures an embedder reads without a metrics registry.
 *
 * Bounded: error kinds are fixed strings chosen by the code (never input).
 */
import type { GatewayMetrics, HandshakeOutcome } from '../observability/metrics.js';
import type { GatewayStats } from './gateway-types.js';

export class NodeStats {
  readonly events: GatewayStats['events'] = {
    published: 0,
    duplicates: 0,
    delivered: 0,
    replayed: 0,
    acked: 0,
    broadcasts: 0,
  };
  private readonly errors: Record<string, number> = {};

  constructor(private readonly metrics: GatewayMetrics) {}

  countError(kind: string): void {
    this.errors[kind] = (this.errors[kind] ?? 0) + 1;
  }

  /** `count` events were written from history (a replay): `/v1/stats` and `/metrics` count them alike. */
  countReplayed(count: number): void {
    this.events.replayed += count;
    this.events.delivered += count;
    this.metrics.eventsReplayed.inc(count);
    this.metrics.eventsDelivered.inc(count);
  }

  countHandshake(outcome: HandshakeOutcome): void {
    if (outcome === 'accepted') {
      this.metrics.countAccepted();
      return;
    }
    this.metrics.handshakes.inc({ outcome });
    this.countError(`handshake_${outcome}`);
  }

  /** Copies, so a caller cannot change the node's figures. */
  snapshot(): Pick<GatewayStats, 'events' | 'errors'> {
    return { events: { ...this.events }, errors: { ...this.errors } };
  }
}
