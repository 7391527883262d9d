/**
 * Fan-out: what the broker hands this node goes to the node's connections.
 * A live event goes to the user's connections in the registry (framed once,
 * `EventFramer`); a broadcast to every open connection; a resync makes the
 * user's connections re-read history. The node's AG-UI streams of the user
 * (`RunListeners`) get the same events and resyncs. The broker never sees a
 * connection.
 */
import type { StreamEvent, StreamHandlers } from '../broker/stream-engine.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { Connection } from './connection.js';
import type { EventFramer } from './event-framer.js';
import type { NodeStats } from './node-stats.js';
import type { ConnectionRegistry } from './registry.js';
import type { RunListeners } from './run-listeners.js';
import { encodeTextFrame } from './wire-frame.js';

export class FanOut implements StreamHandlers {
  constructor(
    private readonly registry: ConnectionRegistry<Connection>,
    private readonly framer: EventFramer,
    private readonly stats: NodeStats,
    private readonly metrics: GatewayMetrics,
    private readonly runListeners: RunListeners | null = null,
  ) {}

  onEvent(userId: string, epoch: string, event: StreamEvent): void {
    let written = 0;
    const frame = this.framer.wire(event);
    // Indexed: no iterator per event.
    const connections = this.registry.connectionsOf(userId);
    for (let i = 0; i < connections.length; i++) {
      if ((connections[i] as Connection).deliverLive(event, frame, epoch)) written++;
    }
    // No closure per event: the text is framed only for a user some stream follows.
    const listeners = this.runListeners;
    if (listeners?.follows(userId)) listeners.deliver(userId, epoch, this.framer.text(event));
    if (written > 0) {
      this.stats.events.delivered += written;
      this.metrics.countDelivered(written);
      this.metrics.deliveryLatency.observe(Math.max(0, Date.now() - event.ts) / 1000);
    }
  }

  onResync(userId: string): void {
    for (const connection of [...this.registry.connectionsOf(userId)]) void connection.resync();
    this.runListeners?.resync(userId);
  }

  /** A broadcast frame (text) for every open connection of this node: encoded once. */
  onBroadcast(frame: string): void {
    const wire = encodeTextFrame(frame);
    this.registry.forEach((connection) => connection.sendShared(wire, frame));
  }
}
