/**
 * The processes of a soak run: one private `redis-server` (a free loopback
 * port other than 6379, its own temp dir) and the gateway nodes
 * (`node dist/cli/main.js serve --redis …`), each on a fixed free loopback
 * port so that a node SIGKILLed and started again comes back at the same
 * address. Every process is signalled by its pid, never by name; `killAll`
 * is synchronous so that it also runs from an `exit` handler.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
/** The port of a Redis that may hold someone's data: never ours. */
const SHARED_REDIS_PORT = 6379;
const START_TIMEOUT_MS = 20_000;

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

/** Resident set size of a live pid in bytes (`VmRSS` of /proc/<pid>/status), or null. */
export function rssBytes(pid) {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Sends one inline command over a raw socket; resolves with the first reply line. */
export function redisCommand(port, command, timeoutMs = 2_000) {
  return new Promise((resolve) => {
    const socket = new Socket();
    let answer = '';
    const done = (reply) => {
      socket.destroy();
      resolve(reply);
    };
    socket.setTimeout(timeoutMs, () => done(null));
    socket.once('error', () => done(null));
    socket.on('data', (chunk) => {
      answer += chunk.toString('utf8');
      const end = answer.indexOf('\r\n');
      if (end >= 0) done(answer.slice(0, end));
    });
    socket.connect(port, '127.0.0.1', () => socket.write(`${command}\r\n`));
  });
}

function exitOf(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

function killPid(pid) {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** Polls `probe` every 50 ms until it resolves true; throws past the deadline or on `dead()`. */
async function waitUntil(probe, { what, dead, timeoutMs = START_TIMEOUT_MS }) {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    const reason = dead();
    if (reason) throw new Error(`${what}: ${reason}`);
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export class SoakRedis {
  constructor(port, dir) {
    this.port = port;
    this.dir = dir;
    this.child = undefined;
    this.stderrHead = '';
    /** `always` or `everysec` (AOF with that `appendfsync`), or `rdb` (the dump only). */
    this.persistence = 'always';
  }

  static async start(persistence) {
    const redis = new SoakRedis(
      await freePort(),
      mkdtempSync(join(tmpdir(), 'agentsocket-soak-redis-')),
    );
    await redis.launch(persistence);
    return redis;
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid() {
    return this.child?.pid;
  }

  /**
   * Starts redis-server on the same port and dir: with the AOF (`always`,
   * `everysec`: the `appendfsync`), or without it (`rdb`: it loads the last
   * `dump.rdb`, as a server with only snapshots would after a crash).
   */
  async launch(persistence) {
    this.persistence = persistence;
    const aof = persistence === 'rdb' ? ['no'] : ['yes', '--appendfsync', persistence];
    this.stderrHead = '';
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--save',
        '',
        '--appendonly',
        ...aof,
        '--protected-mode',
        'no',
        '--loglevel',
        'warning',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr.on('data', (chunk) => {
      if (this.stderrHead.length < 4_096) this.stderrHead += chunk.toString('utf8');
    });
    this.child = child;
    await waitUntil(async () => (await redisCommand(this.port, 'PING', 1_000)) === '+PONG', {
      what: `redis-server on port ${this.port}`,
      dead: () =>
        child.exitCode !== null ? `exited with ${child.exitCode}: ${this.stderrHead}` : '',
    });
  }

  /** SIGKILL by pid: no flush, like a crash. */
  async kill() {
    const child = this.child;
    if (child === undefined) return;
    killPid(child.pid);
    await exitOf(child);
    this.child = undefined;
  }

  killSync() {
    killPid(this.child?.pid);
  }

  removeDir() {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * One gateway node slot: a fixed port, and the process currently serving it
 * (a new pid after every restart; `incarnation` counts them).
 */
export class SoakNode {
  constructor(index, port, env) {
    this.index = index;
    this.port = port;
    this.env = env;
    this.child = undefined;
    this.incarnation = 0;
    this.startedAt = 0;
    this.stderrTail = '';
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.port}/v1/ws`;
  }

  get pid() {
    return this.child?.pid;
  }

  get alive() {
    return this.child !== undefined && this.child.exitCode === null && !this.child.signalCode;
  }

  /** Starts the node and waits until `/readyz` answers 200. */
  async start() {
    this.incarnation++;
    const child = spawn(
      process.execPath,
      [CLI, 'serve', '--port', String(this.port), '--host', '127.0.0.1', '--log-level', 'warn'],
      // Only what the node needs: the runner's variables leak into nothing.
      { env: { PATH: process.env.PATH ?? '', ...this.env }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr.on('data', (chunk) => {
      this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-4_096);
    });
    this.child = child;
    this.startedAt = Date.now();
    await waitUntil(
      async () => {
        try {
          return (await fetch(`${this.url}/readyz`)).status === 200;
        } catch {
          return false;
        }
      },
      {
        what: `node ${this.index} on port ${this.port}`,
        dead: () =>
          child.exitCode !== null || child.signalCode
            ? `exited with ${child.exitCode ?? child.signalCode}: ${this.stderrTail}`
            : '',
        timeoutMs: 60_000,
      },
    );
  }

  /** SIGKILL by pid and wait for the exit. */
  async kill() {
    const child = this.child;
    if (child === undefined) return;
    killPid(child.pid);
    await exitOf(child);
  }

  killSync() {
    killPid(this.child?.pid);
  }
}
