/**
 * Every child process of a bench run, so that each one is killed by its pid
 * at the end, on error and on SIGINT. Nothing else is ever signalled.
 * `children` are the per-measurement processes (servers, load generators),
 * none of which may outlive its measurement; `services` live for the whole
 * run (the harness's own redis-server).
 */
import { fork, spawn } from 'node:child_process';
import { RpcChild } from './rpc.mjs';

export class ProcessSet {
  constructor() {
    this.children = new Set();
    this.services = new Set();
  }

  /**
   * Spawns a run-long service (not a node child: no IPC). stdout is dropped;
   * the first 4 KiB of stderr are kept in `child.stderrHead` for error messages.
   */
  spawnService(command, args) {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderrHead = '';
    child.stderr.on('data', (chunk) => {
      if (child.stderrHead.length < 4_096) child.stderrHead += chunk.toString('utf8');
    });
    this.services.add(child);
    child.on('exit', () => this.services.delete(child));
    return child;
  }

  /** SIGKILL a service by pid and wait for its exit (bounded). */
  async killService(child, { timeoutMs = 5_000 } = {}) {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = exitWithin(child, timeoutMs);
    killPid(child.pid);
    await exited;
  }

  /** Forks `file` with an IPC channel; stdout and stderr go to ours. */
  fork(file, { name, execArgv = [], env = {}, args = [] }) {
    const child = fork(file, args, {
      execArgv,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return new RpcChild(child, `${name} (pid ${child.pid})`);
  }

  /**
   * SIGKILL one child by pid and wait for its exit (bounded). With
   * `graceMs`, first give it that long to exit on its own (after an `exit`
   * command, so that `--cpu-prof` can write its profile).
   */
  async kill(rpcChild, { timeoutMs = 5_000, graceMs = 0 } = {}) {
    const child = rpcChild.child;
    if (graceMs > 0 && !(await exitWithin(child, graceMs))) {
      console.error(`bench: ${rpcChild.name} did not exit within ${graceMs} ms; killing it`);
    }
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = exitWithin(child, timeoutMs);
    killPid(child.pid);
    await exited;
  }

  /** Synchronous: safe to call from an `exit` handler. */
  killAll() {
    for (const child of this.children) killPid(child.pid);
    this.children.clear();
    for (const child of this.services) killPid(child.pid);
    this.services.clear();
  }
}

/** Resolves true when the child has exited (now or within `ms`), false otherwise. */
function exitWithin(child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
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
