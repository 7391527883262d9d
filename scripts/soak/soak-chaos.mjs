/**
 * The chaos of a soak run, four independent loops until `stop()`:
 * - a random node SIGKILLed and started again (same port) every
 *   `nodeKillMs` (a random span inside it);
 * - redis-server SIGKILLed and started again on the same port and dir, once
 *   with `appendfsync always`, and (when `everysecRestart`) later switched to
 *   `everysec` and SIGKILLed again;
 * - with `rdbRestart`, last, a Redis crash that loses the writes of a few
 *   seconds (AOF off, snapshot, SIGKILL, start from the snapshot);
 * - a random open client socket terminated every `dropEveryMs`;
 * - a random client stalled (stops reading) every `stallEveryMs`, for up to
 *   `stallMaxMs` (past the ack timeout, so that some are closed with 4408).
 * Every action is logged with its time for the report.
 */
import { redisCommand } from './soak-processes.mjs';

const between = ([low, high]) => low + Math.random() * (high - low);
const pick = (items) => items[Math.floor(Math.random() * items.length)];

export class SoakChaos {
  /**
   * @param {object} options
   * @param {import('./soak-processes.mjs').SoakNode[]} options.nodes
   * @param {import('./soak-processes.mjs').SoakRedis} options.redis
   * @param {import('./soak-device.mjs').SoakDevice[]} options.devices
   * @param {object} options.plan timings (see `chaosPlan` in soak-options.mjs)
   * @param {(line: string) => void} options.log
   */
  constructor({ nodes, redis, devices, plan, log }) {
    this.nodes = nodes;
    this.redis = redis;
    this.devices = devices;
    this.plan = plan;
    this.log = log;
    this.startedAt = 0;
    this.stopped = false;
    this.wakers = new Set();
    this.loops = [];
    /** `{t, action, detail}` of every chaos action. */
    this.actions = [];
    this.failures = [];
  }

  start() {
    this.startedAt = Date.now();
    this.loops = [
      this.guard('node kills', () => this.nodeKills()),
      this.guard('redis restarts', () => this.redisRestarts()),
      this.guard('redis rollback', () =>
        this.plan.rdbRestart ? this.redisRdbRollback() : Promise.resolve(),
      ),
      this.guard('socket drops', () => this.every(this.plan.dropEveryMs, () => this.dropOne())),
      this.guard('reader stalls', () => this.every(this.plan.stallEveryMs, () => this.stallOne())),
    ];
  }

  /** Ends every loop; resolves once a node or Redis being restarted is back. */
  async stop() {
    this.stopped = true;
    for (const wake of this.wakers) wake();
    await Promise.all(this.loops);
  }

  /** Keeps every action; prints the process kills (`loud`), not each drop and stall. */
  record(action, detail, loud = true) {
    const t = Math.round((Date.now() - this.startedAt) / 100) / 10;
    this.actions.push({ t, action, detail });
    if (loud) this.log(`[chaos +${t}s] ${action}${detail ? ` ${detail}` : ''}`);
  }

  async guard(name, loop) {
    try {
      await loop();
    } catch (error) {
      this.failures.push(`${name}: ${error.message}`);
      this.record('FAILED', `${name}: ${error.message}`);
    }
  }

  /** Waits `ms`, or less when stopped; resolves with whether to go on. */
  sleep(ms) {
    if (this.stopped) return Promise.resolve(false);
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        resolve(!this.stopped);
      };
      const timer = setTimeout(wake, ms);
      this.wakers.add(wake);
    });
  }

  /** Waits until `atMs` after the start. */
  sleepUntil(atMs) {
    return this.sleep(Math.max(0, this.startedAt + atMs - Date.now()));
  }

  async every(spanMs, action) {
    while (await this.sleep(between(spanMs))) action();
  }

  async nodeKills() {
    while (await this.sleep(between(this.plan.nodeKillMs))) {
      const node = pick(this.nodes.filter((n) => n.alive));
      if (node === undefined) continue;
      this.record('SIGKILL node', `${node.index} (pid ${node.pid})`);
      await node.kill();
      // Restarted even when stopping: the drain needs every node.
      await new Promise((resolve) => setTimeout(resolve, between(this.plan.nodeDownMs)));
      await node.start();
      this.record('node back', `${node.index} (pid ${node.pid})`);
    }
  }

  async redisRestarts() {
    if (!(await this.sleepUntil(this.plan.redisAlwaysAtMs))) return;
    await this.restartRedis('always');
    if (!this.plan.everysecRestart) return;
    if (!(await this.sleepUntil(this.plan.redisSwitchAtMs))) return;
    const reply = await redisCommand(this.redis.port, 'CONFIG SET appendfsync everysec');
    if (reply === '+OK') this.redis.persistence = 'everysec';
    this.record('redis appendfsync everysec', reply ?? 'no answer');
    if (!(await this.sleepUntil(this.plan.redisEverysecAtMs))) return;
    await this.restartRedis('everysec');
  }

  /**
   * A crash that loses acknowledged writes, on purpose: the AOF is turned
   * off, a snapshot taken, writes go on for `rdbLossWindowMs`, and the
   * SIGKILLed server comes back from the snapshot. Streams roll back while
   * their epoch (in the snapshot) survives: the case of issue 17.
   */
  async redisRdbRollback() {
    if (!(await this.sleepUntil(this.plan.redisRdbAtMs))) return;
    const off = await redisCommand(this.redis.port, 'CONFIG SET appendonly no');
    const save = await redisCommand(this.redis.port, 'SAVE', 10_000);
    this.redis.persistence = 'rdb';
    this.record('redis snapshot, AOF off', `${off ?? 'no answer'} ${save ?? 'no answer'}`);
    if (!(await this.sleep(this.plan.rdbLossWindowMs))) return;
    await this.restartRedis('rdb');
  }

  async restartRedis(persistence) {
    this.record('SIGKILL redis', `(pid ${this.redis.pid}, ${this.redis.persistence})`);
    await this.redis.kill();
    await new Promise((resolve) => setTimeout(resolve, between(this.plan.redisDownMs)));
    await this.redis.launch(persistence);
    this.record('redis back', `(pid ${this.redis.pid}, ${persistence})`);
  }

  dropOne() {
    const device = pick(this.devices.filter((d) => d.connected));
    if (device?.drop()) this.record('drop socket', `${device.user.id}/${device.index}`, false);
  }

  stallOne() {
    const device = pick(this.devices.filter((d) => d.connected));
    const ms = Math.round(between([1_000, this.plan.stallMaxMs]));
    if (device?.stall(ms)) {
      this.record('stall reader', `${device.user.id}/${device.index} ${ms}ms`, false);
    }
  }
}
