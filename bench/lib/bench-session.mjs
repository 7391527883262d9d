/**
 * One server under test and its load generators, started fresh for one
 * measurement and killed (by pid) after it: no state leaks from one
 * measurement to the next. Users are split across the load generators in
 * contiguous slices; each generator's expected count is its slice's share.
 */
import { AGENTSOCKET_ENGINES } from './bench-config.mjs';
import { LatencyHistogram } from './latency-histogram.mjs';

const SERVER_FILES = {
  agentsocket: new URL('../servers/agentsocket-server.mjs', import.meta.url),
  'agentsocket-redis': new URL('../servers/agentsocket-server.mjs', import.meta.url),
  'agentsocket-redis-cluster-1': new URL('../servers/agentsocket-server.mjs', import.meta.url),
  'agentsocket-redis-cluster-3': new URL('../servers/agentsocket-server.mjs', import.meta.url),
  ws: new URL('../servers/ws-server.mjs', import.meta.url),
  socketio: new URL('../servers/socketio-server.mjs', import.meta.url),
};
/**
 * Extra Node flags for the servers, from `BENCH_SERVER_FLAGS` (space-separated),
 * to look inside a run: `--trace-gc-nvp`, `--heap-prof`. Not for figures to publish.
 */
const SERVER_EXTRA_FLAGS = (process.env.BENCH_SERVER_FLAGS ?? '').split(' ').filter(Boolean);

const LOADER_FILE = new URL('../load/loader.mjs', import.meta.url);
/**
 * The load generators are the measuring instrument: with V8's default young
 * generation their own scavenges (tens of ms at 20,000 msg/s) showed up as
 * the p99 latency of every system, bare ws included (11 ms, against 1 ms
 * with this flag, in A/B runs of the targeted scenario). Servers keep the defaults.
 */
const LOADER_EXEC_ARGV = ['--max-semi-space-size=32'];
const START_TIMEOUT_MS = 30_000;

export function userIds(count, prefix = 'u') {
  return Array.from({ length: count }, (_, i) => `${prefix}${i}`);
}

function cpuMicros(usage) {
  return usage.user + usage.system;
}

export class BenchSession {
  constructor({
    processes,
    system,
    auth,
    server,
    port,
    unixPath,
    info,
    loaders,
    config,
    secret,
    profileDir,
    redis,
  }) {
    this.processes = processes;
    this.system = system;
    this.auth = auth;
    this.server = server;
    this.port = port;
    /** The server's Unix socket (`server-host.mjs`). */
    this.unixPath = unixPath;
    this.info = info;
    this.loaders = loaders;
    this.config = config;
    this.secret = secret;
    this.profileDir = profileDir;
    /** The harness's BenchRedis when the system runs on it, else undefined. */
    this.redis = redis;
    /** User ids of each loader, from the last `connect`. */
    this.slices = loaders.map(() => []);
  }

  /**
   * With `profileDir`, the server runs under `--cpu-prof` and writes its profile there.
   * `redis` (a BenchRedis) is required by the systems whose engine is Redis.
   * `serverEnv` adds environment variables to the server process only.
   */
  static async start({
    processes,
    system,
    auth = 'jwt',
    loaderCount,
    config,
    secret,
    profileDir,
    redis,
    serverEnv = {},
  }) {
    const engine = AGENTSOCKET_ENGINES[system];
    const onRedis = engine === 'redis' || engine === 'redis-cluster';
    if (onRedis && !redis) throw new Error(`${system} needs the harness's redis-server`);
    const where =
      engine === 'redis'
        ? { BENCH_REDIS_URL: redis.url }
        : engine === 'redis-cluster'
          ? { BENCH_REDIS_CLUSTER: redis.urls.join(',') }
          : {};
    const engineEnv = engine === undefined ? {} : { BENCH_ENGINE: engine, ...where };
    const profile = profileDir
      ? [
          '--cpu-prof',
          `--cpu-prof-dir=${profileDir}`,
          `--cpu-prof-name=${system}-${auth}-${Date.now()}.cpuprofile`,
        ]
      : [];
    const server = processes.fork(SERVER_FILES[system], {
      name: `${system} server`,
      execArgv: ['--expose-gc', ...profile, ...SERVER_EXTRA_FLAGS],
      env: { BENCH_AUTH: auth, BENCH_JWT_SECRET: secret, ...engineEnv, ...serverEnv },
    });
    const loaders = Array.from({ length: loaderCount }, (_, i) =>
      processes.fork(LOADER_FILE, { name: `loader ${i}`, execArgv: LOADER_EXEC_ARGV }),
    );
    try {
      const ready = await server.ready(START_TIMEOUT_MS);
      await Promise.all(loaders.map((loader) => loader.ready(START_TIMEOUT_MS)));
      return new BenchSession({
        processes,
        system,
        auth,
        server,
        port: ready.port,
        unixPath: ready.unixPath,
        info: ready.info,
        loaders,
        config,
        secret,
        profileDir,
        redis: onRedis ? redis : undefined,
      });
    } catch (error) {
      await processes.kill(server);
      for (const loader of loaders) await processes.kill(loader);
      throw error;
    }
  }

  split(ids) {
    const size = Math.ceil(ids.length / this.loaders.length);
    return this.loaders.map((_, i) => ids.slice(i * size, (i + 1) * size));
  }

  /** Signs the tokens of these users in the loaders (untimed). */
  async prepare(ids) {
    this.slices = this.split(ids);
    const { auth, secret } = this;
    await Promise.all(
      this.loaders.map((loader, i) =>
        loader.call('prepare', { userIds: this.slices[i], auth, secret }, this.timeout()),
      ),
    );
  }

  timeout() {
    return this.config.stepTimeoutMs;
  }

  /**
   * Opens one client per user id (call `prepare` first). `concurrency` is the
   * number of handshakes in flight over all loaders. Elapsed = first dial to
   * last client ready, over all loaders.
   */
  async connect(ids, { concurrency, resume = false }) {
    this.slices = this.split(ids);
    const perLoader = Math.max(1, Math.ceil(concurrency / this.loaders.length));
    const results = await Promise.all(
      this.loaders.map((loader, i) =>
        loader.call(
          'connect',
          {
            system: this.system,
            port: this.port,
            userIds: this.slices[i],
            auth: this.auth,
            secret: this.secret,
            concurrency: perLoader,
            timeoutMs: Math.min(20_000, this.timeout()),
            ackEvery: this.config.ackEvery,
            resume,
          },
          this.timeout() * 2,
        ),
      ),
    );
    const errors = {};
    for (const result of results) {
      for (const [key, count] of Object.entries(result.errors)) {
        errors[key] = (errors[key] ?? 0) + count;
      }
    }
    const startMs = Math.min(...results.map((r) => r.startMs));
    const endMs = Math.max(...results.map((r) => r.endMs));
    return {
      opened: results.reduce((sum, r) => sum + r.opened, 0),
      failed: results.reduce((sum, r) => sum + r.failed, 0),
      startMs,
      elapsedMs: endMs - startMs,
      errors,
    };
  }

  /**
   * Connects every client of a fresh session and waits until the server
   * counts them all; fails loudly when a client could not connect.
   */
  async connectAll(ids, options) {
    await this.prepare(ids);
    const result = await this.connect(ids, options);
    if (result.failed > 0) {
      throw new Error(
        `${this.system}: ${result.failed} of ${ids.length} clients failed to connect: ` +
          JSON.stringify(result.errors),
      );
    }
    await this.waitServerConnections(ids.length);
    return result;
  }

  async disconnect() {
    await Promise.all(this.loaders.map((loader) => loader.call('disconnect')));
  }

  /**
   * Clients ack every `ackEvery` events from now on (null: they stop acking);
   * with `inStepAfter`, all of them ack after their next `inStepAfter` events.
   */
  async setAckEvery(ackEvery, inStepAfter) {
    await Promise.all(
      this.loaders.map((loader) => loader.call('setAckEvery', { ackEvery, inStepAfter })),
    );
  }

  async reset() {
    await Promise.all(this.loaders.map((loader) => loader.call('reset')));
  }

  /** The server's CPU (µs, user + system) and memory now. */
  async serverUsage({ gc = false } = {}) {
    return this.server.call(gc ? 'usageAfterGc' : 'usage');
  }

  async serverConnections() {
    return this.server.call('connections');
  }

  /** Waits until the server counts `target` connections (bounded by the step timeout). */
  async waitServerConnections(target) {
    const deadline = Date.now() + this.timeout();
    let count = await this.serverConnections();
    while (count !== target && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      count = await this.serverConnections();
    }
    if (count !== target) {
      throw new Error(`${this.system}: server holds ${count} connections, expected ${target}`);
    }
  }

  /**
   * Waits until each loader received its share (`perUser(sliceLength)`),
   * then merges what they saw.
   */
  async waitReceived(expectedForSlice, field = 'received') {
    const command = field === 'received' ? 'waitReceived' : 'waitCaughtUp';
    const answers = await Promise.all(
      this.loaders.map((loader, i) =>
        loader.call(
          command,
          { target: expectedForSlice(this.slices[i].length), timeoutMs: this.timeout() },
          this.timeout() + 10_000,
        ),
      ),
    );
    return mergeSnapshots(
      answers.map((answer) => answer.snapshot),
      answers,
    );
  }

  /** The redis-server's CPU time so far (µs), or null when the system does not use it. */
  async redisCpuMicros() {
    return this.redis ? this.redis.cpuMicros() : null;
  }

  async loaderCpuMicros() {
    const snapshots = await Promise.all(this.loaders.map((loader) => loader.call('snapshot')));
    return snapshots.reduce((sum, snapshot) => sum + cpuMicros(snapshot.cpu), 0);
  }

  /**
   * Runs a server-side publishing command while the loaders count, and
   * measures: messages delivered, server and loader CPU over the window,
   * throughput (publish start to last receipt), end-to-end latency.
   */
  async measureDelivery(command, args, expectedForSlice) {
    await this.reset();
    const before = await this.serverUsage();
    const loaderBefore = await this.loaderCpuMicros();
    const redisBefore = await this.redisCpuMicros();
    const shardsBefore = (await this.redis?.shardCpuMicros?.()) ?? null;
    const [published, received] = await Promise.all([
      this.server.call(command, args, this.timeout() * 3),
      this.waitReceived(expectedForSlice),
    ]);
    const after = await this.serverUsage();
    const loaderAfter = await this.loaderCpuMicros();
    const redisAfter = await this.redisCpuMicros();
    const shardsAfter = (await this.redis?.shardCpuMicros?.()) ?? null;
    const expected = this.slices.reduce((sum, slice) => sum + expectedForSlice(slice.length), 0);
    const wallMs = Math.max(received.lastAtMs, published.endMs) - published.startMs;
    const delivered = received.received;
    const serverCpu = cpuMicros(after.cpu) - cpuMicros(before.cpu);
    const loaderCpu = loaderAfter - loaderBefore;
    return {
      published: published.published,
      expected,
      delivered,
      complete: delivered >= expected,
      wallMs,
      throughput: delivered / (wallMs / 1000),
      publishRate: published.published / ((published.endMs - published.startMs) / 1000),
      serverCpuUs: serverCpu,
      cpuUsPerMsg: serverCpu / Math.max(1, delivered),
      serverUtilization: serverCpu / 1000 / wallMs,
      loaderCpuUsPerMsg: loaderCpu / Math.max(1, delivered),
      loaderUtilization: loaderCpu / 1000 / wallMs / this.loaders.length,
      // The Redis engine's other half: the redis-server's CPU, not in serverCpuUs.
      redisCpuUsPerMsg:
        redisBefore === null ? null : (redisAfter - redisBefore) / Math.max(1, delivered),
      // Redis Cluster: each shard's CPU per delivered message, in shard order.
      shardCpuUsPerMsg:
        shardsBefore === null
          ? null
          : shardsAfter.map((after, i) => (after - shardsBefore[i]) / Math.max(1, delivered)),
      p50Ms: received.latency.percentile(50),
      p99Ms: received.latency.percentile(99),
      negativeLatencies: received.latency.negative,
      unexpectedCloses: received.unexpectedCloses,
    };
  }

  /**
   * Kills the server first (its side of the sockets takes the TIME_WAITs),
   * then the loaders. A profiled server is asked to exit so it writes its profile.
   */
  async close() {
    if (this.profileDir) {
      await this.server.call('exit', {}, 5_000).catch(() => {});
      await this.processes.kill(this.server, { graceMs: 10_000 });
    } else await this.processes.kill(this.server);
    for (const loader of this.loaders) await this.processes.kill(loader);
  }
}

function mergeSnapshots(snapshots, answers) {
  const latency = new LatencyHistogram();
  const catchUp = new LatencyHistogram();
  const unexpectedCloses = {};
  let received = 0;
  let caughtUp = 0;
  let replayed = 0;
  let gaps = 0;
  let lastAtMs = 0;
  for (const snapshot of snapshots) {
    latency.add(snapshot.latency);
    catchUp.add(snapshot.catchUp);
    received += snapshot.received;
    caughtUp += snapshot.caughtUp;
    replayed += snapshot.replayed;
    gaps += snapshot.gaps;
    lastAtMs = Math.max(lastAtMs, snapshot.lastAtMs);
    for (const [code, count] of Object.entries(snapshot.unexpectedCloses)) {
      unexpectedCloses[code] = (unexpectedCloses[code] ?? 0) + count;
    }
  }
  return {
    received,
    caughtUp,
    replayed,
    gaps,
    lastAtMs,
    latency,
    catchUp,
    unexpectedCloses,
    timedOut: answers.some((answer) => answer.timedOut),
  };
}
