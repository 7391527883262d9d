/**
 * `/v1/stats` counts events written from history (a resume's replay) as
 * `replayed` and, like `agentsocket_events_delivered_total`, as `delivered`
 * (docs/operations.md). The soak found `replayed` stuck at 0.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';

let h: Harness;
afterEach(async () => h?.close());

describe('stats of a replay', () => {
  it('counts each event of a resume replay as replayed and delivered', async () => {
    h = await startGateway({ historySize: 10 });
    const live = await h.connect('alice');
    const { epoch } = await live.welcome();
    for (let i = 0; i < 7; i++) await h.gateway.publish('alice', { event: 'token', data: { i } });
    await live.waitForEvents(7);
    const before = h.gateway.stats().events;

    const resumed = await h.connect('alice', { query: { lastSeq: 3, epoch } });
    await resumed.waitForEvents(4);

    const after = h.gateway.stats().events;
    expect(after.replayed - before.replayed).toBe(4);
    expect(after.delivered - before.delivered).toBe(4);
  });
});
