/**
 * The harness's own Redis Cluster for the `agentsocket-redis-cluster-N`
 * systems: N masters, no replicas (a replica would take CPU from the same 2
 * cores without serving anything), each a `redis-server --cluster-enabled
 * yes` on a free port of 127.0.0.1 (never 6379) in its own temp dir, without
 * persistence, joined by `redis-cli --cluster create`. Started once per run,
 * only when such a system is selected; every process is killed by its pid
 * at the end, on error and on SIGINT (through the ProcessSet). Like
 * `BenchRedis`, it is flushed between measurements and reads the CPU time
 * of each shard.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, ping, parseInfo } from './bench-redis.mjs';

const START_TIMEOUT_MS = 20_000;

export class BenchRedisCluster {
  constructor({ processes, shards }) {
    this.processes = processes;
    /** `{ child, port, dir, client }` per master. */
    this.shards = shards;
  }

  /** Starts `count` masters, creates the cluster and waits for `cluster_state:ok` (bounded). */
  static async start(processes, count) {
    const shards = [];
    const cluster = new BenchRedisCluster({ processes, shards });
    try {
      for (let i = 0; i < count; i++) {
        const port = await freePort();
        const dir = mkdtempSync(join(tmpdir(), 'agentsocket-bench-cluster-'));
        process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
        const child = processes.spawnService('redis-server', [
          ...['--port', String(port), '--bind', '127.0.0.1', '--dir', dir],
          ...['--save', '', '--appendonly', 'no', '--protected-mode', 'no'],
          ...['--loglevel', 'warning', '--cluster-enabled', 'yes'],
          ...['--cluster-config-file', 'nodes.conf'],
          // A lone master never learns its own address from a peer: announce it.
          ...['--cluster-announce-ip', '127.0.0.1'],
        ]);
        shards.push({ child, port, dir, client: undefined });
        const deadline = Date.now() + START_TIMEOUT_MS;
        while (!(await ping(port))) {
          if (child.exitCode !== null || Date.now() > deadline) {
            throw new Error(`cluster node on port ${port} did not answer PING`);
          }
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
      }
      for (const shard of shards) {
        shard.client = new Redis({ host: '127.0.0.1', port: shard.port, lazyConnect: true });
        await shard.client.connect();
      }
      if (count === 1) {
        // `redis-cli --cluster create` wants 3 masters at least: one takes every slot itself.
        await shards[0].client.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
      } else {
        const created = spawnSync(
          'redis-cli',
          [
            '--cluster',
            'create',
            ...shards.map((s) => `127.0.0.1:${s.port}`),
            '--cluster-replicas',
            '0',
            '--cluster-yes',
          ],
          { encoding: 'utf8', timeout: START_TIMEOUT_MS },
        );
        if (created.status !== 0) throw new Error(`redis-cli --cluster create: ${created.stdout}`);
      }
      const deadline = Date.now() + START_TIMEOUT_MS;
      for (;;) {
        const infos = await Promise.all(shards.map((s) => s.client.call('CLUSTER', 'INFO')));
        if (infos.every((info) => /cluster_state:ok/.test(String(info)))) break;
        if (Date.now() > deadline)
          throw new Error('the bench cluster never reached cluster_state:ok');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  get urls() {
    return this.shards.map((s) => `redis://127.0.0.1:${s.port}`);
  }

  get version() {
    return undefined;
  }

  /** Empties every master. */
  async flush() {
    await Promise.all(this.shards.map((s) => s.client.flushall()));
  }

  /** CPU time (user + system) of every shard so far, µs, in shard order. */
  async shardCpuMicros() {
    return Promise.all(
      this.shards.map(async (s) => {
        const fields = parseInfo(await s.client.info('cpu'));
        return Math.round((Number(fields.used_cpu_user) + Number(fields.used_cpu_sys)) * 1e6);
      }),
    );
  }

  /** CPU time of all shards together, µs. */
  async cpuMicros() {
    return (await this.shardCpuMicros()).reduce((sum, value) => sum + value, 0);
  }

  async stop() {
    for (const shard of this.shards) {
      shard.client?.disconnect();
      await this.processes.killService(shard.child);
      rmSync(shard.dir, { recursive: true, force: true });
    }
  }
}
