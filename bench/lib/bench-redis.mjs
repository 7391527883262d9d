/**
 * The harness's own redis-server for the `agentsocket-redis` system: a free
 * port on 127.0.0.1 (never 6379), a fresh temp dir, no persistence
 * (`--save "" --appendonly no`). Started once per run, only when that system
 * is selected, and killed by its pid at the end, on error and on SIGINT
 * (through the ProcessSet). A client of the orchestrator flushes it between
 * measurements and reads its CPU time.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

const START_TIMEOUT_MS = 10_000;
/** The port of a Redis that may hold someone's data: never ours. */
const SHARED_REDIS_PORT = 6379;

/** True when `redis-server` runs here. */
export function redisServerAvailable() {
  const probe = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
  return probe.error === undefined && probe.status === 0;
}

/** A free TCP port on 127.0.0.1 other than 6379: bind port 0, read it, close. */
export async function freePort() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port: bound } = server.address();
        server.close(() => resolve(bound));
      });
    });
    if (port !== SHARED_REDIS_PORT) return port;
  }
}

/** One PING over a raw socket; resolves true on `+PONG`. */
export function ping(port) {
  return new Promise((resolve) => {
    const socket = new Socket();
    let answer = '';
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.on('data', (chunk) => {
      answer += chunk.toString('utf8');
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
    socket.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
  });
}

/** The `key:value` fields of an `INFO` answer. */
export function parseInfo(info) {
  const fields = {};
  for (const line of info.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return fields;
}

export class BenchRedis {
  constructor({ processes, child, port, dir, client, version }) {
    this.processes = processes;
    /** The redis-server's version, for the report. */
    this.version = version;
    this.child = child;
    this.port = port;
    this.dir = dir;
    this.client = client;
  }

  /** Starts redis-server and waits until it answers PING (bounded). */
  static async start(processes) {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'agentsocket-bench-redis-'));
    // Sync, so that it also runs from an `exit` handler; the pid is killed by killAll.
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    const child = processes.spawnService('redis-server', [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--protected-mode',
      'no',
      '--loglevel',
      'warning',
    ]);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await ping(port))) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`redis-server exited with ${child.exitCode}: ${child.stderrHead.trim()}`);
      }
      if (Date.now() > deadline) {
        await processes.killService(child);
        throw new Error(`redis-server on port ${port} did not answer PING in time`);
      }
      // Poll on its exit or a short tick, whichever comes first.
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 25))]);
    }
    const client = new Redis({
      host: '127.0.0.1',
      port,
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
    });
    await client.connect();
    const { redis_version: version = 'unknown' } = parseInfo(await client.info('server'));
    return new BenchRedis({ processes, child, port, dir, client, version });
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid() {
    return this.child.pid;
  }

  /** Empties every database, so that a measurement never sees an earlier one's streams. */
  async flush() {
    await this.client.flushall();
  }

  /** The server's CPU time so far (user + system), µs. */
  async cpuMicros() {
    const fields = parseInfo(await this.client.info('cpu'));
    const seconds = Number(fields.used_cpu_user) + Number(fields.used_cpu_sys);
    return Math.round(seconds * 1_000_000);
  }

  /** Disconnects the client, kills the server by pid, removes its dir. */
  async stop() {
    this.client.disconnect();
    await this.processes.killService(this.child);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
