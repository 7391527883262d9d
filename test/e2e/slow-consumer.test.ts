/**
 * PROTOCOL.md section 3, "Backpressure": a connection whose unsent bytes pass
 * `limits.maxBufferedBytes` is closed with 4429 and resumes from history when
 * it reconnects; a slow connection never delays the other connections of the
 * same user.
 */
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';
import type { TestClient } from '../helpers/test-client.js';
import { waitFor } from '../helpers/wait-for.js';

const MAX_BUFFERED_BYTES = 256 * 1024;
/** Each event frame is a little under 200 KiB: below the limit on its own. */
const PAYLOAD = 'x'.repeat(200 * 1024 - 200);
/**
 * Enough to fill the kernel's buffers on both ends of a loopback socket
 * (a few MiB) and then the gateway's 256 KiB; the loop stops at the close.
 */
const MAX_EVENTS = 600;
/** Events published after the slow connection was closed: its reconnect must get them. */
const AFTER_CLOSE = 5;

let h: Harness;
afterEach(async () => h?.close());

/**
 * Stops reading from the client's TCP socket, as a stalled browser tab would:
 * the kernel buffers fill, then the server's socket queues what it cannot
 * send. `_socket` is ws's own underlying `net.Socket`; there is no public
 * handle to it, hence the cast.
 */
function tcpSocketOf(client: TestClient): Socket {
  return (client.ws as unknown as { _socket: Socket })._socket;
}

async function counterValue(name: 'slowConsumerCloses'): Promise<number> {
  const metric = await h.gateway.metrics[name].get();
  return metric.values[0]?.value ?? 0;
}

describe('slow consumer', () => {
  it('closes a connection that stops reading with 4429 while a fast one gets every event, then resumes it from history', async () => {
    h = await startGateway({ limits: { maxBufferedBytes: MAX_BUFFERED_BYTES }, historySize: 5000 });
    const fast = await h.connect('alice', { autoAck: true });
    const slow = await h.connect('alice');
    const { epoch } = await slow.welcome();
    tcpSocketOf(slow).pause();

    let published = 0;
    while ((await counterValue('slowConsumerCloses')) === 0) {
      expect(published, 'the slow connection was never cut off').toBeLessThan(MAX_EVENTS);
      published++;
      await h.gateway.publish('alice', { event: 'chunk', data: { n: published, text: PAYLOAD } });
      // The fast connection keeps up: it has every event before the next one.
      await fast.waitForEvents(published);
    }
    // The slow connection is closing; nothing more is written to it.
    expect(h.gateway.connections('alice').map((c) => c.state)).toContain('closing');
    for (let i = 0; i < AFTER_CLOSE; i++) {
      published++;
      await h.gateway.publish('alice', { event: 'chunk', data: { n: published, text: 'late' } });
    }
    const all = Array.from({ length: published }, (_, i) => i + 1);
    await fast.waitForEvents(published);
    expect(fast.seqs()).toEqual(all);
    expect(fast.events().map((e) => (e.data as { n: number }).n)).toEqual(all);
    expect(fast.closedWith).toBeNull();

    // Reading again, the slow client gets what was queued before the close, then the close.
    tcpSocketOf(slow).resume();
    expect(await slow.waitForClose(10_000)).toMatchObject({ code: 4429 });
    await waitFor(() => h.gateway.connections('alice').length === 1, { what: 'slow removed' });
    const metrics = await h.gateway.metrics.registry.metrics();
    expect(metrics).toMatch(/agentsocket_slow_consumer_closes_total 1\b/);
    expect(metrics).toMatch(/agentsocket_closes_total\{code="4429"\} 1\b/);
    expect(metrics).not.toMatch(/agentsocket_closes_total\{code="4429"\} [2-9]/);

    // What it got is a prefix of what was written before the close: nothing after it.
    const got = slow.seqs();
    expect(got).toEqual(all.slice(0, got.length));
    expect(got.length).toBeLessThanOrEqual(published - AFTER_CLOSE);

    // Its cursor brings the rest from history, with no gap and no duplicate.
    const lastSeq = got.at(-1) ?? 0;
    const resumed = await h.connect('alice', { query: { lastSeq, epoch } });
    const welcome = await resumed.welcome();
    expect(welcome.replay).toEqual({ from: lastSeq + 1, count: published - lastSeq, gap: false });
    await resumed.waitForEvents(published - lastSeq, 10_000);
    expect([...got, ...resumed.seqs()]).toEqual(all);
  });

  it('does not cut off a connection that reads, however much is published', async () => {
    h = await startGateway({ limits: { maxBufferedBytes: MAX_BUFFERED_BYTES } });
    const reader = await h.connect('alice');
    const events = 100;
    for (let n = 1; n <= events; n++) {
      await h.gateway.publish('alice', { event: 'chunk', data: { n, text: PAYLOAD } });
      await reader.waitForEvents(n);
    }
    expect(reader.seqs()).toEqual(Array.from({ length: events }, (_, i) => i + 1));
    expect(reader.closedWith).toBeNull();
    expect(await counterValue('slowConsumerCloses')).toBe(0);
  });
});
