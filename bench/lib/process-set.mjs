/**
 * Every child process of a bench run, so that each one is killed by its pid
 * at the end, on error and on SIGINT. Nothing else is ever signalled.
 */
import { fork } from 'node:child_process';
import { RpcChild } from './rpc.mjs';

export class ProcessSet {
  constructor() {
    this.children = new Set();
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

  /** SIGKILL one child by pid and wait for its exit (bounded). */
  async kill(rpcChild, timeoutMs = 5_000) {
    const child = rpcChild.child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    killPid(child.pid);
    await exited;
  }

  /** Synchronous: safe to call from an `exit` handler. */
  killAll() {
    for (const child of this.children) killPid(child.pid);
    this.children.clear();
  }
}

function killPid(pid) {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
