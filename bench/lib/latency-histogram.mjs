/**
 * A fixed-size log-bucket histogram of latencies (2 % wide buckets from 1 µs
 * to ~100 s): constant memory whatever the message count, mergeable across
 * load generators, percentiles within 2 %.
 */
const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);
const BUCKETS = 940;

export class LatencyHistogram {
  constructor() {
    this.counts = new Float64Array(BUCKETS);
    this.count = 0;
    /** Samples below zero: clock skew between processes, recorded as 0. */
    this.negative = 0;
  }

  /** Records one latency in milliseconds. */
  record(ms) {
    const us = ms * 1000;
    let index = 0;
    if (us > 1) index = Math.min(BUCKETS - 1, Math.ceil(Math.log(us) / LOG_GROWTH));
    else if (us < 0) this.negative++;
    this.counts[index]++;
    this.count++;
  }

  reset() {
    this.counts.fill(0);
    this.count = 0;
    this.negative = 0;
  }

  /** A compact form for IPC: only the non-empty buckets. */
  toJSON() {
    const buckets = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i] > 0) buckets.push([i, this.counts[i]]);
    return { buckets, count: this.count, negative: this.negative };
  }

  static fromJSON(json) {
    const histogram = new LatencyHistogram();
    histogram.add(json);
    return histogram;
  }

  /** Adds another histogram's `toJSON()` into this one. */
  add(json) {
    for (const [index, count] of json.buckets) this.counts[index] += count;
    this.count += json.count;
    this.negative += json.negative;
  }

  /** The latency in ms under which `p` (0–100) percent of samples fall; null when empty. */
  percentile(p) {
    if (this.count === 0) return null;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) return i === 0 ? 0.001 : GROWTH ** i / 1000;
    }
    return GROWTH ** (BUCKETS - 1) / 1000;
  }
}
