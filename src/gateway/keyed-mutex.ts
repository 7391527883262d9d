/**
 * Serializes async work per key (per user): the connect and disconnect steps
 * of one user (subscribe on the first local connection, unsubscribe on the
 * last) never interleave, while different users never wait for each other.
 *
 * Bounded: a key's entry exists only while work for it is queued or running.
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Runs `work` after every earlier `run` of the same key has settled. */
  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key);
    if (previous !== undefined) {
      const result = previous.then(work, work);
      this.hold(key, result);
      return result;
    }
    // Nothing queued for the key (every connection of a new user): start at
    // once rather than a microtask later. The key is held first, so a `run`
    // of the same key from inside `work`'s synchronous part waits for this one.
    let done!: () => void;
    this.hold(key, new Promise<void>((resolve) => (done = resolve)));
    const result = startNow(work);
    void result.then(done, done);
    return result;
  }

  /** Makes `step` the key's tail: the next `run` waits for it; the last one removes the entry. */
  private hold(key: string, step: Promise<unknown>): void {
    const tail = step.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
  }

  /** Keys with work queued or running (for tests and stats). */
  get size(): number {
    return this.tails.size;
  }
}

/** `work()`, its synchronous throw (if any) as a rejection, like `then(work)` would give. */
function startNow<T>(work: () => Promise<T>): Promise<T> {
  try {
    return work();
  } catch (error) {
    return Promise.reject(error);
  }
}
