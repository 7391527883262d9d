/**
 * The real `agentsocket` command as a child process (`node dist/cli/main.js`),
 * for end-to-end tests: a server started with `serve --port 0` is found by its
 * `listening` log line; everything it writes is kept for leak checks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor } from './wait-for.js';

export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface CliServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `ws://127.0.0.1:PORT/v1/ws` */
  wsUrl: string;
  child: ChildProcess;
  /** Everything written to stdout so far. */
  stdout(): string;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** stdout lines that are JSON log records. */
  logRecords(): Array<Record<string, unknown>>;
  /** Resolves with the exit code (or the signal name) when the process ends. */
  exited: Promise<number | string>;
  /** Sends `signal` and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/** Environment of a child: only what it needs, so the runner's variables leak into nothing. */
function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '', ...env };
}

/**
 * Starts `agentsocket serve --port 0 --host 127.0.0.1 …args` and waits for
 * `listening`. `port`: a fixed port instead of 0, to restart a server where
 * its clients look for it.
 */
export async function startCliServer(
  args: string[],
  env: Record<string, string> = {},
  options: { port?: number } = {},
): Promise<CliServer> {
  const child = spawn(
    process.execPath,
    [CLI, 'serve', '--port', String(options.port ?? 0), '--host', '127.0.0.1', ...args],
    { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  let exitedWith: number | string | null = null;
  void exited.then((code) => (exitedWith = code));
  const logRecords = (): Array<Record<string, unknown>> =>
    out
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  const listening = await waitFor(
    () => {
      if (exitedWith !== null) {
        throw new Error(`server exited with ${String(exitedWith)} before listening: ${err}`);
      }
      return logRecords().find((record) => record.msg === 'listening');
    },
    { timeoutMs: 15_000, what: 'the listening log line' },
  );
  const url = listening.url as string;
  return {
    url,
    wsUrl: `${url.replace(/^http/, 'ws')}/v1/ws`,
    child,
    stdout: () => out,
    stderr: () => err,
    logRecords,
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (exitedWith === null) child.kill(signal);
      return exited;
    },
  };
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `agentsocket …args` to its end. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: childEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}
