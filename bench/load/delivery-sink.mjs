/**
 * What one load generator counts: messages received, when the last one came,
 * their end-to-end latency, resume catch-up times, and closes nobody asked for.
 */
import { LatencyHistogram } from '../lib/latency-histogram.mjs';

export class DeliverySink {
  constructor() {
    this.latency = new LatencyHistogram();
    this.catchUp = new LatencyHistogram();
    this.reset();
  }

  reset() {
    this.received = 0;
    this.lastAtMs = 0;
    this.latency.reset();
    this.catchUp.reset();
    this.caughtUp = 0;
    this.gaps = 0;
    this.replayed = 0;
    this.unexpectedCloses = {};
  }

  /** One data message, sent at `sentAtMs`, received at `atMs`. */
  record(sentAtMs, atMs) {
    this.received++;
    this.lastAtMs = atMs;
    this.latency.record(atMs - sentAtMs);
  }

  /** A resumed client has every replayed event, `ms` after it dialled. */
  recordCatchUp(ms) {
    this.caughtUp++;
    this.catchUp.record(ms);
  }

  unexpectedClose(reason) {
    const key = String(reason);
    this.unexpectedCloses[key] = (this.unexpectedCloses[key] ?? 0) + 1;
  }

  toJSON() {
    return {
      received: this.received,
      lastAtMs: this.lastAtMs,
      latency: this.latency.toJSON(),
      catchUp: this.catchUp.toJSON(),
      caughtUp: this.caughtUp,
      gaps: this.gaps,
      replayed: this.replayed,
      unexpectedCloses: this.unexpectedCloses,
    };
  }
}
