/**
 * The client's cursor in the app's storage (`storage`, `storageKey`), if it
 * gave one. Storage can throw (quota, privacy mode): a failure is reported
 * through `onError` and the client carries on without it.
 */
import type { ClientError } from './client-types.js';
import { loadCursor, saveCursor } from './cursor-storage.js';
import type { StorageLike } from './cursor-storage.js';
import type { StreamCursor } from './seq-tracker.js';

export class CursorStore {
  readonly #storage: StorageLike | undefined;
  readonly #key: string;
  readonly #onError: (error: ClientError) => void;

  constructor(
    storage: StorageLike | undefined,
    key: string,
    onError: (error: ClientError) => void,
  ) {
    this.#storage = storage;
    this.#key = key;
    this.#onError = onError;
  }

  /** The stored cursor; null when there is none, no storage, or it cannot be read. */
  load(): StreamCursor | null {
    if (!this.#storage) return null;
    try {
      return loadCursor(this.#storage, this.#key);
    } catch (cause) {
      this.#onError({ kind: 'storage', message: 'could not read the cursor', cause });
      return null;
    }
  }

  save(cursor: StreamCursor | null): void {
    if (!this.#storage || !cursor) return;
    try {
      saveCursor(this.#storage, this.#key, cursor);
    } catch (cause) {
      this.#onError({ kind: 'storage', message: 'could not save the cursor', cause });
    }
  }
}
