/**
 * Promises waiting for something to happen to a key (a user's first open
 * connection), each with its own deadline. Bounded: past `maxWaiters` a new
 * wait resolves at once with the timeout value.
 */
export class KeyedWaiters<T> {
  private readonly waiting = new Map<string, Set<(value: T) => void>>();
  private count = 0;

  constructor(private readonly maxWaiters: number) {}

  /** Resolves with the value given to `resolve(key)`, or with `onTimeout` after `timeoutMs`. */
  wait(key: string, timeoutMs: number, onTimeout: T = false as T): Promise<T> {
    if (this.count >= this.maxWaiters) return Promise.resolve(onTimeout);
    return new Promise<T>((resolvePromise) => {
      let set = this.waiting.get(key);
      if (!set) this.waiting.set(key, (set = new Set()));
      const done = (value: T): void => {
        clearTimeout(timer);
        const current = this.waiting.get(key);
        if (current?.delete(done)) {
          this.count--;
          if (current.size === 0) this.waiting.delete(key);
        }
        resolvePromise(value);
      };
      const timer = setTimeout(() => done(onTimeout), timeoutMs);
      timer.unref?.();
      set.add(done);
      this.count++;
    });
  }

  resolve(key: string, value: T): void {
    const set = this.waiting.get(key);
    if (!set) return;
    for (const done of [...set]) done(value);
  }

  get size(): number {
    return this.count;
  }
}
