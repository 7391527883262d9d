/**
 * A private nginx for one test: Debian's `nginx` binary, a generated config in
 * a temp dir (pid, logs and temp paths all in there, `-p` prefix, no root
 * paths), `daemon off` and no master process, so the child is nginx itself
 * and is stopped by its pid.
 *
 * When nginx cannot be found, `nginxMissing` is true: nginx tests use
 * `describe.skipIf(nginxMissing)` and a loud banner says why. CI installs
 * nginx (.ci/run), so CI never skips.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './wait-for.js';

/** `nginx` on PATH, else Debian's /usr/sbin/nginx (not on a plain user's PATH). */
function findNginx(): string | null {
  for (const candidate of ['nginx', '/usr/sbin/nginx']) {
    const probe = spawnSync(candidate, ['-v'], { stdio: 'ignore' });
    if (probe.error === undefined && probe.status === 0) return candidate;
  }
  return null;
}

const NGINX = findNginx();

/** True when nginx cannot be run here: nginx tests skip (never in CI). */
export const nginxMissing = NGINX === null;

if (nginxMissing) {
  console.warn(
    [
      '',
      '################################################################',
      '#  NGINX TESTS SKIPPED: `nginx` is not on PATH nor in /usr/sbin.#',
      '#  Install it (apt-get install nginx; .ci/run does).            #',
      '################################################################',
      '',
    ].join('\n'),
  );
}

export interface NginxOptions {
  /** What goes in `http { }`: upstreams, maps, servers. */
  http: string;
  /** The port `http` listens on, to wait for. */
  port: number;
  /** Deadline for nginx to accept connections. Default 10 s. */
  startTimeoutMs?: number;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once('error', () => resolve(false));
    socket.connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(true);
    });
  });
}

export class Nginx {
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly child: ChildProcess,
    private readonly exited: Promise<void>,
    readonly stderr: () => string,
  ) {}

  /** `http://127.0.0.1:PORT` */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(options: NginxOptions): Promise<Nginx> {
    if (NGINX === null) throw new Error('nginx is not installed');
    const dir = mkdtempSync(join(tmpdir(), 'agentsocket-nginx-'));
    for (const temp of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) {
      mkdirSync(join(dir, temp));
    }
    const config = [
      'daemon off;',
      'master_process off;',
      'worker_processes 1;',
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log notice;`,
      'events { worker_connections 256; }',
      'http {',
      `  access_log ${dir}/access.log;`,
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(
        (temp) => `  ${temp}_temp_path ${dir}/${temp};`,
      ),
      options.http,
      '}',
      '',
    ].join('\n');
    writeFileSync(join(dir, 'nginx.conf'), config);
    const child = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', 'stderr'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    let exitCode: number | string | null = null;
    const exited = new Promise<void>((resolve) =>
      child.once('exit', (code, signal) => {
        exitCode = code ?? signal;
        resolve();
      }),
    );
    const nginx = new Nginx(dir, options.port, child, exited, () => stderr);
    try {
      await waitFor(
        async () => {
          if (exitCode !== null) throw new Error(`nginx exited with ${exitCode}: ${stderr}`);
          return accepts(options.port);
        },
        { timeoutMs: options.startTimeoutMs ?? 10_000, what: `nginx on port ${options.port}` },
      );
    } catch (error) {
      await nginx.stop();
      throw error;
    }
    return nginx;
  }

  /** Fast shutdown (SIGTERM), waits for the exit, removes the temp dir. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    await this.exited;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
