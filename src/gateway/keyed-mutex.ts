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
    // Nothing queued for the key (every connection of a new user): start at
    // once rather than a microtask later, one promise fewer per handshake.
    const result = previous === undefined ? startNow(work) : previous.then(work, work);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      // Only the last queued step may remove the entry.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
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
