/**
 * Draining (PROTOCOL.md section 6): what was accepted before `close()` began
 * finishes; what comes after is refused with 503.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

describe('drain', () => {
  it('finishes a batch accepted before the drain, every event of it', async () => {
    h = await startGateway();
    const client = await h.connect('alice');
    const items = Array.from({ length: 50 }, (_, i) => ({
      userId: 'alice',
      event: 'token',
      data: { i },
    }));
    const batch = h.gateway.publishBatch(items);
    const closing = h.gateway.close();
    const results = await batch;
    await closing;
    expect(results.filter((r) => 'error' in r)).toEqual([]);
    expect(results.map((r) => ('seq' in r ? r.seq : 0))).toEqual(items.map((_, i) => i + 1));
    expect(client.seqs()).toEqual(items.map((_, i) => i + 1));
    expect(client.closedWith?.code).toBe(1001);
  });

  it('finishes a broadcast accepted before the drain and refuses the next one', async () => {
    h = await startGateway();
    const client = await h.connect('alice');
    const broadcast = h.gateway.broadcast('maintenance', { at: 1 });
    const closing = h.gateway.close();
    await expect(broadcast).resolves.toMatchObject({ connections: 1 });
    await expect(h.gateway.broadcast('late')).rejects.toMatchObject({ status: 503 });
    await closing;
    expect(client.frames.filter((f) => f.type === 'broadcast')).toHaveLength(1);
  });
});
