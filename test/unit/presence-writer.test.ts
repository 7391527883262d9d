/**
 * PresenceWriter: writes of one user never overlap, changes during a write
 * lead to exactly one more write, failures are reported and not thrown, and a
 * refresh writes every user at most `concurrency` at a time.
 */
import { describe, expect, it } from 'vitest';
import { PresenceWriter } from '../../src/gateway/presence-writer.js';

/** A write the test finishes by hand. */
function manualWrites() {
  const started: string[] = [];
  const finish: (() => void)[] = [];
  let running = 0;
  let peak = 0;
  const write = (userId: string): Promise<void> => {
    started.push(userId);
    running++;
    peak = Math.max(peak, running);
    return new Promise<void>((resolve) =>
      finish.push(() => {
        running--;
        resolve();
      }),
    );
  };
  return { started, finish, write, peak: () => peak };
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('PresenceWriter', () => {
  it('coalesces changes during a write into one more write, never two at once', async () => {
    const writes = manualWrites();
    const writer = new PresenceWriter({ write: writes.write, onError: () => undefined });
    const first = writer.touch('u');
    void writer.touch('u');
    void writer.touch('u');
    expect(writes.started).toEqual(['u']);
    expect(writer.pending).toBe(1);
    writes.finish.shift()?.();
    await turn();
    expect(writes.started).toEqual(['u', 'u']); // one more for the two changes
    writes.finish.shift()?.();
    await first;
    expect(writes.started).toHaveLength(2);
    expect(writes.peak()).toBe(1);
    expect(writer.pending).toBe(0);
  });

  it('reports a failed write and goes on', async () => {
    const errors: string[] = [];
    const writer = new PresenceWriter({
      write: () => Promise.reject(new Error('redis down')),
      onError: (userId, error) => errors.push(`${userId}: ${(error as Error).message}`),
    });
    await writer.touch('u');
    await writer.touch('u');
    expect(errors).toEqual(['u: redis down', 'u: redis down']);
    expect(writer.pending).toBe(0);
  });

  it('refreshes every user, at most `concurrency` at a time', async () => {
    const writes = manualWrites();
    const writer = new PresenceWriter({
      write: writes.write,
      onError: () => undefined,
      concurrency: 3,
    });
    const users = Array.from({ length: 10 }, (_, i) => `u${i}`);
    const done = writer.refresh(users);
    while (writes.started.length < users.length || writes.finish.length > 0) {
      await turn();
      expect(writer.pending).toBeLessThanOrEqual(3);
      writes.finish.shift()?.();
    }
    await done;
    expect(writes.started).toEqual(users);
    expect(writes.peak()).toBe(3);
  });

  it('lets I/O run between the batches of a refresh, even when writes settle at once', async () => {
    const written: string[] = [];
    const writer = new PresenceWriter({
      write: async (userId) => void written.push(userId),
      onError: () => undefined,
      concurrency: 4,
    });
    const users = Array.from({ length: 10 }, (_, i) => `u${i}`);
    const done = writer.refresh(users);
    // What one turn of the event loop saw: the first batch only.
    await turn();
    expect(written.length).toBeGreaterThanOrEqual(4);
    expect(written.length).toBeLessThan(users.length);
    await done;
    expect(written).toEqual(users);
  });
});
