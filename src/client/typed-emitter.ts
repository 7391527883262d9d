/**
 * A small typed event emitter, the same in browsers and Node. Listeners are
 * bounded per event name (`maxListeners`): adding one more throws, so a leak
 * shows up as an error instead of growing memory.
 */

export type Listener<T> = (payload: T) => void;

export const DEFAULT_MAX_LISTENERS = 1000;

export class TypedEmitter<M extends object> {
  readonly #listeners = new Map<keyof M, Set<Listener<never>>>();
  readonly #maxListeners: number;

  constructor(maxListeners = DEFAULT_MAX_LISTENERS) {
    this.#maxListeners = maxListeners;
  }

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof M>(name: K, listener: Listener<M[K]>): () => void {
    let set = this.#listeners.get(name);
    if (!set) {
      set = new Set();
      this.#listeners.set(name, set);
    }
    if (!set.has(listener) && set.size >= this.#maxListeners) {
      throw new RangeError(
        `more than ${this.#maxListeners} listeners for "${String(name)}": a listener leak?`,
      );
    }
    set.add(listener);
    return () => this.off(name, listener);
  }

  /** Adds a listener that runs once. */
  once<K extends keyof M>(name: K, listener: Listener<M[K]>): () => void {
    const off = this.on(name, (payload) => {
      off();
      listener(payload);
    });
    return off;
  }

  off<K extends keyof M>(name: K, listener: Listener<M[K]>): void {
    const set = this.#listeners.get(name);
    if (!set) return;
    set.delete(listener);
    if (set.size === 0) this.#listeners.delete(name);
  }

  listenerCount(name: keyof M): number {
    return this.#listeners.get(name)?.size ?? 0;
  }

  protected emit<K extends keyof M>(name: K, payload: M[K]): void {
    const set = this.#listeners.get(name);
    if (!set) return;
    // A copy: listeners may add or remove listeners while they run.
    for (const listener of [...set] as Listener<M[K]>[]) {
      try {
        listener(payload);
      } catch (error) {
        this.onListenerError(error, name);
      }
    }
  }

  /**
   * What a listener threw; the other listeners still run. By default it is
   * reported as uncaught, outside the emitter's caller.
   */
  protected onListenerError(error: unknown, _name: keyof M): void {
    setTimeout(() => {
      throw error;
    }, 0);
  }
}
