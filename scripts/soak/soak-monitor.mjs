/* global AbortSignal -- Node 20 has it; the shared eslint globals list does not. */
/**
 * What the soak watches on the nodes while it runs: RSS of every process
 * (from /proc/<pid>/status) on a fixed period, and each node's `/v1/stats`
 * and `/metrics` counters. A SIGKILLed process cannot be asked afterwards,
 * so the last sample of every incarnation (node slot + pid) is kept and the
 * run's totals are their sum.
 */
import { rssBytes } from './soak-processes.mjs';

/** Counters read from `/metrics`, summed over their labels unless split here. */
const METRICS = [
  'agentsocket_broker_errors_total',
  'agentsocket_replay_gaps_total',
  'agentsocket_ack_timeouts_total',
  'agentsocket_slow_consumer_closes_total',
  'agentsocket_bad_frames_total',
  'agentsocket_closes_total',
  'agentsocket_handshakes_total',
  'agentsocket_events_published_total',
  'agentsocket_events_delivered_total',
  'agentsocket_events_replayed_total',
  'agentsocket_task_runs_total',
];
/** The label each of these counters is split by in the report. */
const SPLIT_BY = {
  agentsocket_closes_total: 'code',
  agentsocket_handshakes_total: 'outcome',
  agentsocket_events_published_total: 'kind',
  agentsocket_broker_errors_total: 'op',
  agentsocket_task_runs_total: 'outcome',
};

/** `{name: total}` or `{name: {label: total}}` from the Prometheus text format. */
export function parseCounters(text) {
  const counters = {};
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (!match || !METRICS.includes(match[1])) continue;
    const [, name, labels = '', value] = match;
    const split = SPLIT_BY[name];
    if (split === undefined) {
      counters[name] = (counters[name] ?? 0) + Number(value);
      continue;
    }
    const label = new RegExp(`${split}="([^"]*)"`).exec(labels)?.[1] ?? '';
    counters[name] ??= {};
    counters[name][label] = (counters[name][label] ?? 0) + Number(value);
  }
  return counters;
}

/** Adds `b` into `a` (numbers and one level of labelled numbers). */
function addInto(a, b) {
  for (const [key, value] of Object.entries(b)) {
    if (typeof value === 'number') a[key] = (a[key] ?? 0) + value;
    else if (value !== null && typeof value === 'object') addInto((a[key] ??= {}), value);
  }
  return a;
}

export class SoakMonitor {
  /**
   * @param {object} options
   * @param {import('./soak-processes.mjs').SoakNode[]} options.nodes
   * @param {import('./soak-processes.mjs').SoakRedis} options.redis
   * @param {string} options.apiKey
   * @param {number} options.sampleMs
   */
  constructor({ nodes, redis, apiKey, sampleMs }) {
    this.nodes = nodes;
    this.redis = redis;
    this.apiKey = apiKey;
    this.sampleMs = sampleMs;
    this.startedAt = Date.now();
    this.timer = undefined;
    /** `{t, node, incarnation, pid, rss}`; node -1 is redis-server. */
    this.rss = [];
    /** Last `/v1/stats` errors + `/metrics` counters of each incarnation, by `node#incarnation`. */
    this.lastCounters = new Map();
    this.sampling = false;
  }

  start() {
    this.timer = setInterval(() => void this.sample(), this.sampleMs);
    void this.sample();
  }

  stop() {
    clearInterval(this.timer);
  }

  async sample() {
    if (this.sampling) return;
    this.sampling = true;
    try {
      const t = Date.now() - this.startedAt;
      for (const node of this.nodes) {
        if (!node.alive) continue;
        const rss = rssBytes(node.pid);
        if (rss !== null) {
          this.rss.push({ t, node: node.index, incarnation: node.incarnation, pid: node.pid, rss });
        }
      }
      const redisRss = this.redis.pid === undefined ? null : rssBytes(this.redis.pid);
      if (redisRss !== null)
        this.rss.push({ t, node: -1, incarnation: 0, pid: this.redis.pid, rss: redisRss });
      await Promise.all(
        this.nodes.filter((node) => node.alive).map((node) => this.readCounters(node)),
      );
    } finally {
      this.sampling = false;
    }
  }

  async readCounters(node) {
    const incarnation = node.incarnation;
    const headers = { authorization: `Bearer ${this.apiKey}` };
    try {
      const [stats, metrics] = await Promise.all([
        fetch(`${node.url}/v1/stats`, { headers, signal: AbortSignal.timeout(3_000) }),
        fetch(`${node.url}/metrics`, { headers, signal: AbortSignal.timeout(3_000) }),
      ]);
      if (stats.status !== 200 || metrics.status !== 200) return;
      const { errors, events } = await stats.json();
      const counters = parseCounters(await metrics.text());
      this.lastCounters.set(`${node.index}#${incarnation}`, { errors, events, counters });
    } catch {
      // The node died or is busy: its previous sample stands.
    }
  }

  /** Sum over every incarnation of every node. */
  totals() {
    const total = { errors: {}, events: {}, counters: {} };
    for (const sample of this.lastCounters.values()) addInto(total, sample);
    return total;
  }

  /**
   * Per process (node slot + incarnation, and redis): samples, first, peak,
   * last, and the drift: the least-squares slope of RSS over the second half
   * of the process's life, in MiB per minute, for a process that lived at
   * least `minLifeMs` (a node takes about a minute to fill its heap with its
   * share of connections and history: the first half is warm-up, not drift).
   */
  rssSeries(minLifeMs) {
    const byProcess = new Map();
    for (const sample of this.rss) {
      const key =
        sample.node === -1 ? `redis#${sample.pid}` : `node${sample.node}#${sample.incarnation}`;
      if (!byProcess.has(key)) byProcess.set(key, []);
      byProcess.get(key).push(sample);
    }
    const mib = (bytes) => Math.round((bytes / 1_048_576) * 10) / 10;
    return [...byProcess.entries()].map(([key, samples]) => {
      const lifeMs = samples[samples.length - 1].t - samples[0].t;
      const settled = samples.filter((s) => s.t - samples[0].t >= lifeMs / 2);
      return {
        process: key,
        pid: samples[0].pid,
        fromS: Math.round(samples[0].t / 1000),
        toS: Math.round(samples[samples.length - 1].t / 1000),
        firstMiB: mib(samples[0].rss),
        peakMiB: mib(Math.max(...samples.map((s) => s.rss))),
        lastMiB: mib(samples[samples.length - 1].rss),
        driftMiBPerMin:
          lifeMs >= minLifeMs && settled.length >= 3
            ? Math.round(slope(settled) * 100) / 100
            : null,
        seriesMiB: samples.map((s) => mib(s.rss)),
      };
    });
  }
}

/**
 * The trend of the nodes' ceiling over the run: the least-squares slope of
 * each node incarnation's peak RSS against its start time, in MiB per 10
 * minutes, over incarnations that lived `minLifeMs` (a short-lived one never
 * reached its plateau). Nodes are SIGKILLed every 20-40 s, so no single
 * process lives the whole run; a leak shows as later incarnations peaking
 * higher. Null with fewer than 3 such incarnations.
 */
export function peakTrend(series, minLifeMs) {
  const lived = series.filter(
    (p) => p.process.startsWith('node') && (p.toS - p.fromS) * 1000 >= minLifeMs,
  );
  if (lived.length < 3) return null;
  const perTenMinutes =
    slope(lived.map((p) => ({ t: p.fromS * 1000, rss: p.peakMiB * 1_048_576 }))) * 10;
  return Math.round(perTenMinutes * 10) / 10;
}

/** Least-squares slope of rss (MiB) over t (minutes). */
function slope(samples) {
  const xs = samples.map((s) => s.t / 60_000);
  const ys = samples.map((s) => s.rss / 1_048_576);
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < xs.length; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}
