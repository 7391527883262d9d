import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';

let h: Harness;
afterEach(async () => h?.close());

describe('smoke', () => {
  it('welcomes and delivers', async () => {
    h = await startGateway();
    const alice = await h.connect('alice');
    const welcome = await alice.welcome();
    expect(welcome).toMatchObject({
      type: 'welcome',
      userId: 'alice',
      headSeq: 0,
      replay: { count: 0, gap: false },
    });
    const r = await h.gateway.publish('alice', { event: 'token', data: { t: 'hi' } });
    expect(r.seq).toBe(1);
    expect(r.delivered).toBe(1);
    const [ev] = await alice.waitForEvents(1);
    expect(ev).toMatchObject({ seq: 1, event: 'token', data: { t: 'hi' } });
  });
});
