/**
 * The frames of a connection that fell behind (protocol 1.1, "Coalesced
 * deltas"). Once the socket holds more than `limits.coalesceAboveBytes`,
 * frames wait here, in a `DeltaCoalescer` that merges adjacent deltas of one
 * run (anything else is a barrier), until the socket drains; then they leave
 * in order, merged. The connection stays in this mode, each drain taking what
 * gathered since the last, until a drain finds nothing waiting (the reader
 * caught up): a reader that stays slow gets merged frames at its own pace
 * rather than a burst of single ones after each drain. While frames may wait,
 * every frame of the connection must come here, or it would overtake them.
 *
 * Bounded: past `limits.maxBufferedBytes` (bytes) or the coalescer's frame
 * bound, `push` refuses and the connection closes with 4429. Nothing is dropped.
 */
import type { GatewayMetrics } from '../observability/metrics.js';
import { coalesceEvents, DeltaCoalescer, type PendingItem } from '../runs/delta-coalescer.js';
import type { GatewayLimits } from './options.js';
import type { ConnectionTransport } from './connection-transport.js';
import { encodeTextFrame } from './wire-frame.js';

export class LagQueue {
  /** Frames wait here while the connection lags; null otherwise. */
  private queue: DeltaCoalescer | null = null;
  private readonly next = (): void => this.flush();

  constructor(
    private readonly writer: ConnectionTransport,
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
    if (this.queue === null) {
      this.queue = new DeltaCoalescer({ maxBytes: this.limits.maxBufferedBytes });
      this.writer.whenDrained(() => this.flush());
    }
    return this.queue.push(item);
  }

  /**
   * Writes a sequence at once (a replay), its deltas merged; queued instead
   * when the connection lags. False, as `push`, past the queue's bound.
   */
  writeAll(items: readonly PendingItem[]): boolean {
    if (this.lagging) return items.every((item) => this.push(item));
    const taken = coalesceEvents(items);
    for (const text of taken.frames) this.writer.writeFrame(encodeTextFrame(text), text);
    if (taken.coalesced > 0) this.metrics.coalescedEvents.inc(taken.coalesced);
    return true;
  }

  /** The connection is closing: what waits is never written. */
  clear(): void {
    this.queue = null;
  }

  private flush(): void {
    const queue = this.queue;
    if (queue === null) return;
    if (queue.length === 0) {
      this.queue = null;
      return;
    }
    const taken = queue.takeAll();
    // Merged frames are this connection's own; a frame nothing merged with is
    // framed again here (a lagging connection's cost, not the fan-out's). The
    // next flush waits for the last of them to reach the kernel: what gathers
    // meanwhile leaves merged.
    const last = taken.frames.length - 1;
    taken.frames.forEach((text, index) =>
      this.writer.writeFrame(encodeTextFrame(text), text, index === last ? this.next : undefined),
    );
    if (taken.coalesced > 0) this.metrics.coalescedEvents.inc(taken.coalesced);
    this.flushed();
  }
}
