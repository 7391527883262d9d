/**
 * Persistence of the resume cursor in a `sessionStorage`-like store, so a
 * reloaded page resumes where it was instead of starting over.
 */
import type { StreamCursor } from './seq-tracker.js';

/** The part of the Web Storage API the SDK uses (`sessionStorage` and `localStorage` fit). */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export const DEFAULT_CURSOR_STORAGE_KEY = 'agentsocket.cursor';

/** Reads a cursor; anything malformed (another app's value, an old format) reads as none. */
export function loadCursor(storage: StorageLike, key: string): StreamCursor | null {
  const text = storage.getItem(key);
  if (text === null || text.length > 1024) return null;
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null) return null;
    const { epoch, lastSeq } = value as { epoch?: unknown; lastSeq?: unknown };
    if (typeof epoch !== 'string' || epoch.length === 0 || epoch.length > 256) return null;
    if (typeof lastSeq !== 'number' || !Number.isSafeInteger(lastSeq) || lastSeq < 0) return null;
    return { epoch, lastSeq };
  } catch {
    return null;
  }
}

export function saveCursor(storage: StorageLike, key: string, cursor: StreamCursor): void {
  storage.setItem(key, JSON.stringify({ epoch: cursor.epoch, lastSeq: cursor.lastSeq }));
}
