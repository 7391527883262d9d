/**
 * What the node tells the engine about deliveries: the connections' acks,
 * coalesced to one engine ack per user per turn of the event loop, and the
 * delivery reports of awaited events (`?wait=`: written, or acked if
 * critical), sent to the node that waits over the cluster bus.
 *
 * Bounded: `pending` holds at most one entry per user of this node, and is
 * emptied every turn.
 */
import type { ClusterBus, DeliveryReport } from '../broker/cluster-bus.js';
import type { StreamEngine, StreamEvent } from '../broker/stream-engine.js';
import type { BrokerFailures } from './broker-failures.js';
import type { Connection } from './connection.js';
import type { NodeStats } from './node-stats.js';

export class DeliveryReports {
  /** Acks to store, per user: the highest seq and the epoch it belongs to. */
  private readonly pending = new Map<string, { seq: number; epoch: string }>();
  private flushScheduled = false;

  constructor(
    private readonly streams: StreamEngine,
    private readonly bus: ClusterBus,
    private readonly stats: NodeStats,
    private readonly failures: BrokerFailures,
  ) {}

  /** The connection's cumulative ack moved to `seq`; `awaited` are the awaited events it covers. */
  acked(connection: Connection, seq: number, awaited: readonly StreamEvent[]): void {
    this.stats.events.acked++;
    const pending = this.pending.get(connection.userId);
    if (!pending || pending.epoch !== connection.epoch || pending.seq < seq) {
      this.pending.set(connection.userId, { seq, epoch: connection.epoch });
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    for (const event of awaited) this.report(connection, event, 'acked');
  }

  /** An awaited event was written to `connection`. */
  written(connection: Connection, event: StreamEvent): void {
    this.report(connection, event, 'written');
  }

  private report(connection: Connection, event: StreamEvent, kind: 'written' | 'acked'): void {
    if (event.awaitedBy === undefined) return;
    const report: DeliveryReport = {
      userId: connection.userId,
      id: event.id,
      seq: event.seq,
      epoch: connection.epoch,
      awaitedBy: event.awaitedBy,
      kind,
      connections: 1,
    };
    this.bus
      .reportDelivery(report)
      .catch((error: unknown) =>
        this.failures.background('report_delivery', error, 'delivery report failed'),
      );
  }

  private flush(): void {
    this.flushScheduled = false;
    for (const [userId, { seq, epoch }] of this.pending) {
      this.streams.ack(userId, seq, epoch).catch((error: unknown) => {
        this.stats.countError('broker_ack');
        this.failures.background('ack', error, 'ack not stored', { userId });
      });
    }
    this.pending.clear();
  }
}
