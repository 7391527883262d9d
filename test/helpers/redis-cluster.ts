/**
 * A private Redis Cluster for one test file: `masters` masters with one
 * replica each (default 3 + 3), each a `redis-server --cluster-enabled yes` on
 * a free loopback port in its own temp dir (`RedisServer`, so every process
 * is stopped by its own pid), joined with `redis-cli --cluster create` and
 * awaited until every node says `cluster_state:ok`, with a deadline.
 *
 * `cluster-node-timeout` is short (1 s) so a SIGKILLed master fails over
 * within a few seconds.
 */
import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { RedisServer } from './redis-server.js';
import { waitFor } from './wait-for.js';

export interface RedisClusterOptions {
  /** Masters (each with one replica unless `replicas` is 0). Default 3. */
  masters?: number;
  /** Replicas per master. Default 1. */
  replicas?: 0 | 1;
  /** `cluster-node-timeout` in ms. Default 1000. */
  nodeTimeoutMs?: number;
  /** Deadline for `cluster_state:ok` everywhere. Default 30 s. */
  startTimeoutMs?: number;
}

/** Runs `redis-cli` with `args`; rejects with its output when it fails or outlives `timeoutMs`. */
export function redisCli(args: string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-cli', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else reject(new Error(`redis-cli ${args.join(' ')} exited ${String(code)}: ${output}`));
    });
  });
}

export class RedisCluster {
  private constructor(readonly servers: RedisServer[]) {}

  static async start(options: RedisClusterOptions = {}): Promise<RedisCluster> {
    const masters = options.masters ?? 3;
    const replicas = options.replicas ?? 1;
    const count = masters * (1 + replicas);
    const servers: RedisServer[] = [];
    try {
      for (let i = 0; i < count; i++) {
        servers.push(
          await RedisServer.start({
            extraArgs: [
              '--cluster-enabled',
              'yes',
              '--cluster-config-file',
              'nodes.conf',
              '--cluster-node-timeout',
              String(options.nodeTimeoutMs ?? 1_000),
              // A replica of a master that died takes over without waiting for
              // its data to be recent (tests kill masters under load).
              '--cluster-replica-validity-factor',
              '0',
              // Replicas get their first copy at once, not 5 s later.
              '--repl-diskless-sync-delay',
              '0',
            ],
          }),
        );
      }
      const cluster = new RedisCluster(servers);
      await redisCli([
        '--cluster',
        'create',
        ...servers.map((s) => `127.0.0.1:${s.port}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ]);
      await cluster.waitHealthy(options.startTimeoutMs ?? 30_000);
      return cluster;
    } catch (error) {
      await Promise.allSettled(servers.map((s) => s.dispose()));
      throw error;
    }
  }

  /** Seed URLs of every node (the engine needs only one that answers). */
  get urls(): string[] {
    return this.servers.map((s) => s.url);
  }

  /**
   * Waits until every live node says `cluster_state:ok`, every slot has a
   * master, and every live replica is in sync with a live master.
   */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    await waitFor(
      async () => {
        const live = this.servers.filter((s) => s.pid !== undefined);
        for (const server of live) {
          const info = await this.call(server, ['CLUSTER', 'INFO']);
          if (!/cluster_state:ok/.test(String(info))) return false;
          if (!/cluster_slots_ok:16384/.test(String(info))) return false;
          const replication = String(await this.call(server, ['INFO', 'replication']));
          if (/role:slave/.test(replication)) {
            if (!/master_link_status:up/.test(replication)) return false;
            const port = Number(/master_port:(\d+)/.exec(replication)?.[1]);
            if (!live.some((s) => s.port === port)) return false;
          }
        }
        return true;
      },
      { timeoutMs, intervalMs: 100, what: 'cluster_state:ok on every node' },
    );
  }

  /** The server that is master of `slot` now (as the first live node answers). */
  async masterOf(slot: number): Promise<RedisServer> {
    const port = await this.masterPortOf(slot);
    const server = this.servers.find((s) => s.port === port);
    if (server === undefined) throw new Error(`no server on port ${port}`);
    return server;
  }

  /** The masters, as `CLUSTER NODES` of a live node lists them. */
  async masters(): Promise<RedisServer[]> {
    const nodes = String(await this.call(this.live(), ['CLUSTER', 'NODES']));
    const ports = nodes
      .split('\n')
      .filter((line) => / master /.test(` ${line.split(' ')[2]?.replace(/,/g, ' ')} `))
      .filter((line) => !/fail/.test(line.split(' ')[2] ?? ''))
      .map((line) => Number(/:(\d+)@/.exec(line)?.[1]));
    return this.servers.filter((s) => ports.includes(s.port));
  }

  /** Node id (CLUSTER MYID) of `server`. */
  async nodeId(server: RedisServer): Promise<string> {
    return String(await this.call(server, ['CLUSTER', 'MYID']));
  }

  /** One command on one node, on a short-lived client. */
  async call(server: RedisServer, args: string[]): Promise<unknown> {
    const client = new Redis(server.port, '127.0.0.1', {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    try {
      await client.connect();
      return await client.call(args[0]!, ...args.slice(1));
    } finally {
      client.disconnect();
    }
  }

  async dispose(): Promise<void> {
    await Promise.allSettled(this.servers.map((s) => s.dispose()));
  }

  private live(): RedisServer {
    const server = this.servers.find((s) => s.pid !== undefined);
    if (server === undefined) throw new Error('no live node');
    return server;
  }

  private async masterPortOf(slot: number): Promise<number> {
    const slots = (await this.call(this.live(), ['CLUSTER', 'SLOTS'])) as [
      number,
      number,
      [string, number],
    ][];
    for (const [start, end, master] of slots) {
      if (slot >= start && slot <= end) return Number(master[1]);
    }
    throw new Error(`slot ${slot} has no master`);
  }
}
