/**
 * Ordered, recoverable delivery (docs/delivery.md, invariants 2-5): resume at
 * every boundary of the history, recovery without a cursor, and the seam
 * between replay and live events.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';
import { waitFor } from '../helpers/wait-for.js';

let h: Harness;
afterEach(async () => h?.close());

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function publishMany(userId: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await h.gateway.publish(userId, { event: 'token', data: { i } });
}

/** The epoch of the user's stream, read the way a client learns it: from a welcome. */
async function epochOf(userId: string): Promise<string> {
  const probe = await h.connect(userId);
  const { epoch } = await probe.welcome();
  probe.close();
  await probe.waitForClose();
  return epoch;
}

describe('resume at every boundary', () => {
  it('cursor at head: nothing replayed, live continues at head + 1', async () => {
    h = await startGateway({ historySize: 10 });
    await publishMany('alice', 5);
    const epoch = await epochOf('alice');
    const client = await h.connect('alice', { query: { lastSeq: 5, epoch } });
    expect((await client.welcome()).replay).toEqual({ from: 6, count: 0, gap: false });
    expect((await client.welcome()).headSeq).toBe(5);
    await h.gateway.publish('alice', { event: 'token' });
    await client.waitForEvents(1);
    expect(client.seqs()).toEqual([6]);
  });

  it('cursor inside history: exactly the events after it', async () => {
    h = await startGateway({ historySize: 10 });
    await publishMany('alice', 7);
    const epoch = await epochOf('alice');
    const client = await h.connect('alice', { query: { lastSeq: 3, epoch } });
    expect((await client.welcome()).replay).toEqual({ from: 4, count: 4, gap: false });
    await client.waitForEvents(4);
    expect(client.seqs()).toEqual([4, 5, 6, 7]);
  });

  it('cursor before the start of history: gap, replay from the first stored event', async () => {
    h = await startGateway({ historySize: 10 });
    await publishMany('alice', 15);
    const epoch = await epochOf('alice');
    const client = await h.connect('alice', { query: { lastSeq: 2, epoch } });
    expect((await client.welcome()).replay).toEqual({ from: 6, count: 10, gap: true });
    await client.waitForEvents(10);
    expect(client.seqs()).toEqual(range(6, 15));
  });

  it('cursor of another epoch: gap, the whole retained history', async () => {
    h = await startGateway({ historySize: 10 });
    await publishMany('alice', 4);
    const client = await h.connect('alice', { query: { lastSeq: 2, epoch: 'e_not_this_stream' } });
    expect((await client.welcome()).replay).toEqual({ from: 1, count: 4, gap: true });
    await client.waitForEvents(4);
    expect(client.seqs()).toEqual([1, 2, 3, 4]);
  });

  it('cursor ahead of the head (forged): gap, the whole retained history', async () => {
    h = await startGateway({ historySize: 10 });
    await publishMany('alice', 3);
    const epoch = await epochOf('alice');
    const client = await h.connect('alice', { query: { lastSeq: 50, epoch } });
    const welcome = await client.welcome();
    expect(welcome.replay.gap).toBe(true);
    await client.waitForEvents(3);
    expect(client.seqs()).toEqual([1, 2, 3]);
  });

  it('replay then live with no gap and no duplicate while events keep flowing', async () => {
    h = await startGateway({ historySize: 1000 });
    const total = 300;
    let published = 0;
    const publisher = (async () => {
      for (; published < total;) {
        await h.gateway.publish('alice', { event: 'token', data: { i: published } });
        published++;
      }
    })();
    await waitFor(() => published >= 20, { what: '20 events published' });
    const epoch = await epochOf('alice');
    const cursor = Math.min(published, 10);
    const client = await h.connect('alice', { query: { lastSeq: cursor, epoch } });
    await publisher;
    await client.waitForEvents(total - cursor);
    expect(client.seqs()).toEqual(range(cursor + 1, total));
  });
});

describe('recovery without a cursor', () => {
  it('delivers what no connection of the user acknowledged: events published while away', async () => {
    h = await startGateway();
    const first = await h.connect('alice');
    await publishMany('alice', 3);
    await first.waitForEvents(3);
    first.ack(3);
    await waitFor(() => h.gateway.connections('alice')[0]?.ackedSeq === 3, { what: 'ack 3' });
    first.close();
    await first.waitForClose();
    await publishMany('alice', 2); // 4, 5 while away
    const second = await h.connect('alice');
    expect((await second.welcome()).replay).toEqual({ from: 4, count: 2, gap: false });
    await second.waitForEvents(2);
    expect(second.seqs()).toEqual([4, 5]);
  });

  it('replays events a dead connection received but never acked', async () => {
    h = await startGateway();
    const first = await h.connect('alice');
    await publishMany('alice', 4);
    await first.waitForEvents(4);
    first.ack(2);
    await waitFor(() => h.gateway.connections('alice')[0]?.ackedSeq === 2, { what: 'ack 2' });
    first.terminate(); // dies with 3 and 4 unacked
    await waitFor(() => h.gateway.connections('alice').length === 0, {
      what: 'the dead socket gone',
    });
    const second = await h.connect('alice');
    await second.waitForEvents(2);
    expect(second.seqs()).toEqual([3, 4]);
  });

  it('a first connection gets everything published before it (the publish-before-connect race)', async () => {
    h = await startGateway();
    await publishMany('newcomer', 3);
    const client = await h.connect('newcomer');
    expect((await client.welcome()).replay).toEqual({ from: 1, count: 3, gap: false });
    await client.waitForEvents(3);
    expect(client.seqs()).toEqual([1, 2, 3]);
  });

  it('reports a gap when history no longer holds the unacknowledged events', async () => {
    h = await startGateway({ historySize: 5 });
    await publishMany('alice', 8);
    const client = await h.connect('alice');
    expect((await client.welcome()).replay).toEqual({ from: 4, count: 5, gap: true });
  });
});

describe('idempotent publish', () => {
  it('a repeated id returns the first seq and sends nothing again', async () => {
    h = await startGateway();
    const client = await h.connect('alice');
    const first = await h.gateway.publish('alice', { event: 'token', id: 'op-1' });
    const again = await h.gateway.publish('alice', { event: 'token', id: 'op-1' });
    await h.gateway.publish('alice', { event: 'token', id: 'op-2' });
    expect(again).toMatchObject({ seq: first.seq, duplicate: true, delivered: 0, id: 'op-1' });
    await client.waitForEvents(2);
    expect(client.events().map((e) => e.id)).toEqual(['op-1', 'op-2']);
  });
});
