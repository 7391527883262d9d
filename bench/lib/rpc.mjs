/**
 * Request and answer over a `child_process.fork` IPC channel: the orchestrator
 * calls named commands on its children (servers, load generators) and awaits
 * the result. Every call has a deadline; a child that exits fails its calls.
 */

/** Child side: answers `{kind:'call'}` messages with the named handler's result. */
export function serveRpc(handlers) {
  process.on('message', async (message) => {
    if (!message || message.kind !== 'call') return;
    const handler = handlers[message.cmd];
    try {
      if (typeof handler !== 'function') throw new Error(`unknown command ${message.cmd}`);
      const result = await handler(message.args ?? {});
      process.send({ kind: 'reply', id: message.id, ok: true, result });
    } catch (error) {
      process.send({
        kind: 'reply',
        id: message.id,
        ok: false,
        error: String(error?.stack ?? error),
      });
    }
  });
  // The orchestrator is gone (crash, SIGKILL): nothing would ever stop us.
  process.on('disconnect', () => process.exit(0));
}

/** Parent side: one forked child, its calls and its `ready` announcement. */
export class RpcChild {
  constructor(child, name) {
    this.child = child;
    this.name = name;
    this.nextId = 1;
    this.pending = new Map();
    this.exited = false;
    this.readyWaiter = null;
    this.readyMessage = null;
    child.on('message', (message) => this.onMessage(message));
    child.on('exit', (code, signal) => {
      this.exited = true;
      const error = new Error(`${name} exited (code ${code}, signal ${signal})`);
      for (const { reject, timer } of this.pending.values()) {
        clearTimeout(timer);
        reject(error);
      }
      this.pending.clear();
      this.readyWaiter?.reject(error);
    });
  }

  onMessage(message) {
    if (message?.kind === 'ready') {
      this.readyMessage = message;
      this.readyWaiter?.resolve(message);
      return;
    }
    if (message?.kind !== 'reply') return;
    const entry = this.pending.get(message.id);
    if (!entry) return;
    this.pending.delete(message.id);
    clearTimeout(entry.timer);
    if (message.ok) entry.resolve(message.result);
    else entry.reject(new Error(`${this.name}: ${message.error}`));
  }

  /** Resolves with the child's `{kind:'ready', ...}` message. */
  ready(timeoutMs) {
    if (this.readyMessage) return Promise.resolve(this.readyMessage);
    if (this.exited) return Promise.reject(new Error(`${this.name} exited before ready`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.name} not ready within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.readyWaiter = {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
    });
  }

  call(cmd, args = {}, timeoutMs = 60_000) {
    if (this.exited) return Promise.reject(new Error(`${this.name} has exited`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: ${cmd} took longer than ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.child.send({ kind: 'call', id, cmd, args });
    });
  }
}
