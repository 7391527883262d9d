import type { StorageLike } from '../../src/client/index.js';

/** A Web Storage with a Map behind it (what sessionStorage does, minus the quota). */
export class MapStorage implements StorageLike {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
}
