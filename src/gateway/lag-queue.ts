/**
 * The frames of a connection that fell behind (protocol 1.1, "Coalesced
 * deltas"). Once the socket holds more than `limits.coalesceAboveBytes`,
 * frames wait here, in a `DeltaCoalescer` that merges adjacent deltas of one
 * run (anything else is a barrier), until the socket drains; then they leave
 * in order, merged, and frames go straight to the socket again. While
 * anything waits, every frame of the connection must come here, or it would
 * overtake what waits.
 *
 * Bounded: past `limits.maxBufferedBytes` (bytes) or the coalescer's frame
 * bound, `push` refuses and the connection closes with 4429. Nothing is dropped.
 */
import type { GatewayMetrics } from '../observability/metrics.js';
import { DeltaCoalescer, type PendingItem } from '../runs/delta-coalescer.js';
import type { GatewayLimits } from './options.js';
import type { SocketWriter } from './socket-writer.js';
import { encodeTextFrame } from './wire-frame.js';

export class LagQueue {
  private queue: DeltaCoalescer | null = null;
  private drainAwaited = false;

  constructor(
    private readonly writer: SocketWriter,
    private readonly limits: Pick<GatewayLimits, 'coalesceAboveBytes' | 'maxBufferedBytes'>,
    private readonly metrics: GatewayMetrics,
    /** Everything that waited was written. */
    private readonly flushed: () => void,
  ) {}

  /** Bytes waiting. */
  get bytes(): number {
    return this.queue?.bytes ?? 0;
  }

  /**
   * True when a frame must wait: something already waits, or the socket
   * holds more than `coalesceAboveBytes` (only where its drain can be seen).
   */
  get lagging(): boolean {
    return (
      this.queue !== null ||
      (this.writer.canWaitForDrain && this.writer.unsentBytes > this.limits.coalesceAboveBytes)
    );
  }

  /** Queues a frame until the socket drains; false, queueing nothing, past the bound. */
  push(item: PendingItem): boolean {
    this.queue ??= new DeltaCoalescer({ maxBytes: this.limits.maxBufferedBytes });
    if (!this.queue.push(item)) return false;
    if (!this.drainAwaited) {
      this.drainAwaited = true;
      this.writer.whenDrained(() => this.flush());
    }
    return true;
  }

  /** The connection is closing: what waits is never written. */
  clear(): void {
    this.queue = null;
  }

  private flush(): void {
    this.drainAwaited = false;
    const queue = this.queue;
    this.queue = null;
    if (queue === null) return;
    const taken = queue.takeAll();
    // Merged frames are this connection's own; a frame nothing merged with is
    // framed again here (a lagging connection's cost, not the fan-out's).
    for (const text of taken.frames) this.writer.writeFrame(encodeTextFrame(text), text);
    if (taken.coalesced > 0) this.metrics.coalescedEvents.inc(taken.coalesced);
    this.flushed();
  }
}
