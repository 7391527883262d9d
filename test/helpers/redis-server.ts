/**
 * A private `redis-server` for one test file: a free port on 127.0.0.1, its own
 * temp dir, never the Redis on 6379. Stopped by its pid, not by name.
 *
 * When `redis-server` is not on PATH, `redisServerMissing` is true: Redis test
 * files use `describe.skipIf(redisServerMissing)` and a loud banner says why.
 * CI installs redis-server, so CI never skips.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

function findRedisServer(): boolean {
  const probe = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
  return probe.error === undefined && probe.status === 0;
}

/** True when `redis-server` cannot be run here: Redis tests skip (never in CI). */
export const redisServerMissing = !findRedisServer();

if (redisServerMissing) {
  console.warn(
    [
      '',
      '################################################################',
      '#  REDIS TESTS SKIPPED: `redis-server` is not on PATH.          #',
      '#  Install it (apt-get install redis-server) to run them.       #',
      '#  CI installs it, so CI runs them.                             #',
      '################################################################',
      '',
    ].join('\n'),
  );
}

export interface RedisServerOptions {
  /** `--appendonly yes` (AOF, fsync everysec) when true. Default false: no persistence. */
  appendOnly?: boolean;
  /** `--appendfsync`: `always` fsyncs every write before the reply. Default `everysec`. */
  appendFsync?: 'always' | 'everysec';
  /** Deadline for the server to answer PING. Default 10 s. */
  startTimeoutMs?: number;
  /** The port to listen on (e.g. one a client already dials). Default: a free port. */
  port?: number;
  /** `--requirepass`: clients must AUTH with it. Default: none. */
  requirePass?: string;
  /** More arguments, after the others (e.g. `['--rename-command', 'CONFIG', '']`). Default none. */
  extraArgs?: string[];
}

export { freePort } from './free-port.js';

/**
 * One PING over a raw socket; resolves true on `+PONG`, or on `-NOAUTH` from a
 * server that requires a password (it is up all the same).
 */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let answer = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('utf8');
      if (answer.includes('\r\n')) done(/^(\+PONG|-NOAUTH)/.test(answer));
    });
    socket.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
  });
}

export class RedisServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly options: Required<Omit<RedisServerOptions, 'port'>>,
  ) {}

  /** Starts a server on a free port in a fresh temp dir and waits until it answers PING. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const server = new RedisServer(
      options.port ?? (await freePort()),
      mkdtempSync(join(tmpdir(), 'agentsocket-redis-')),
      {
        appendOnly: options.appendOnly ?? false,
        appendFsync: options.appendFsync ?? 'everysec',
        startTimeoutMs: options.startTimeoutMs ?? 10_000,
        requirePass: options.requirePass ?? '',
        extraArgs: options.extraArgs ?? [],
      },
    );
    await server.launch();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private async launch(): Promise<void> {
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
        this.options.appendOnly ? 'yes' : 'no',
        '--appendfsync',
        this.options.appendFsync,
        '--protected-mode',
        'no',
        '--loglevel',
        'warning',
        ...(this.options.requirePass !== '' ? ['--requirepass', this.options.requirePass] : []),
        ...this.options.extraArgs,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      if (stderr.length < 4_096) stderr += chunk.toString('utf8');
    });
    const deadline = Date.now() + this.options.startTimeoutMs;
    while (!(await ping(this.port))) {
      if (child.exitCode !== null) {
        throw new Error(`redis-server exited with ${child.exitCode}: ${stderr.trim()}`);
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`redis-server on port ${this.port} did not answer PING in time`);
      }
      // Poll on the next exit or a short tick, whichever comes first.
      await Promise.race([this.exited, new Promise((r) => setTimeout(r, 25))]);
    }
  }

  private async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    await this.exited;
    this.child = undefined;
  }

  /** SIGTERM by pid: Redis flushes the AOF (when enabled) and exits. */
  async stop(): Promise<void> {
    await this.signal('SIGTERM');
  }

  /** SIGKILL by pid: no flush, like a crash. */
  async kill(): Promise<void> {
    await this.signal('SIGKILL');
  }

  /** Starts again on the same port and dir, so an AOF written before survives. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  /** Stops the server and removes its dir. */
  async dispose(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
