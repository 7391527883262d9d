/**
 * PROTOCOL.md section 3, "Critical events": a critical event not acked within
 * `ackTimeout` closes the connection with 4408 and is replayed on the next
 * connection; an ack in time keeps it open; non-critical events need no ack;
 * an ack for a seq never sent is answered with `error` `bad_ack`.
 *
 * "The deadline passed" is never waited for on the clock: a control
 * connection of another user is sent a critical event just after the one
 * under test and never acks it. Its 4408 close proves that the (earlier,
 * equally long) deadline of the event under test is over too.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ErrorFrame } from '../../src/protocol/frames.js';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';
import type { TestClient } from '../helpers/test-client.js';
import { waitFor } from '../helpers/wait-for.js';

const ACK_TIMEOUT_MS = 300;

let h: Harness;
afterEach(async () => h?.close());

async function start(): Promise<Harness> {
  // These runs are fragments (a delta without its agent_started): about acks, not the run grammar.
  h = await startGateway({ ackTimeoutMs: ACK_TIMEOUT_MS, runGrammar: 'off' });
  return h;
}

/** Sends `control` a critical event it will not ack, and waits for its 4408. */
async function controlTimesOut(control: TestClient): Promise<void> {
  await h.gateway.publish('control', { event: 'agent_started', runId: 'rc', data: { agent: 'c' } });
  expect(await control.waitForClose(5000)).toMatchObject({ code: 4408 });
}

describe('critical ack timeout', () => {
  it('closes with 4408 when a critical event is not acked in time, and replays it to the next connection', async () => {
    await start();
    const alice = await h.connect('alice');
    const publishedAt = Date.now();
    const published = await h.gateway.publish('alice', {
      event: 'agent_started',
      runId: 'r1',
      data: { agent: 'helper' },
    });
    expect(published.seq).toBe(1);
    const [event] = await alice.waitForEvents(1);
    expect(event).toMatchObject({ seq: 1, critical: true, event: 'agent_started' });

    const closed = await alice.waitForClose(5000);
    expect(closed.code).toBe(4408);
    // The event was written after `publishedAt`, so its deadline is at least
    // ACK_TIMEOUT_MS after it (1 ms of slack for timer rounding).
    expect(Date.now() - publishedAt).toBeGreaterThanOrEqual(ACK_TIMEOUT_MS - 1);
    const metrics = await h.gateway.metrics.registry.metrics();
    expect(metrics).toMatch(/agentsocket_ack_timeouts_total 1\b/);
    expect(metrics).toMatch(/agentsocket_closes_total\{code="4408"\} 1\b/);

    // No cursor: the unacked critical event is replayed.
    const next = await h.connect('alice');
    const welcome = await next.welcome();
    expect(welcome.replay).toEqual({ from: 1, count: 1, gap: false });
    const [replayed] = await next.waitForEvents(1);
    expect(replayed).toMatchObject({ seq: 1, id: published.id, critical: true });
  });

  it('keeps the connection open when the critical event is acked in time', async () => {
    await start();
    const alice = await h.connect('alice', { autoAck: true });
    const control = await h.connect('control');
    await h.gateway.publish('alice', { event: 'agent_started', runId: 'r1', data: { agent: 'a' } });
    await alice.waitForEvents(1);
    await controlTimesOut(control);

    // Alice's deadline is over as well; she acked, so she is still served.
    expect(alice.closedWith).toBeNull();
    await h.gateway.publish('alice', { event: 'agent_thinking', runId: 'r1', data: { text: 'x' } });
    expect((await alice.waitForEvents(2)).map((e) => e.seq)).toEqual([1, 2]);
    await waitForAcked('alice', 2);
    expect(h.gateway.connections('alice')[0]?.state).toBe('open');
    expect(alice.closedWith).toBeNull();
  });

  it('gives each critical event its own deadline: acking an earlier one does not cover a later one', async () => {
    await start();
    const alice = await h.connect('alice');
    // Any event name is critical when the publisher says so.
    await h.gateway.publish('alice', { event: 'custom.approval', critical: true, data: 1 });
    await alice.waitForEvents(1);
    alice.ack(1);
    await waitForAcked('alice', 1);
    await h.gateway.publish('alice', { event: 'custom.approval', critical: true, data: 2 });
    await alice.waitForEvents(2);

    expect(await alice.waitForClose(5000)).toMatchObject({ code: 4408 });
    await waitFor(() => h.gateway.connections('alice').length === 0, { what: 'alice removed' });
    const next = await h.connect('alice');
    expect((await next.welcome()).replay).toEqual({ from: 2, count: 1, gap: false });
    expect((await next.waitForEvents(1)).map((e) => [e.seq, e.data])).toEqual([[2, 2]]);
  });

  it('never asks for an ack of a non-critical event', async () => {
    await start();
    const alice = await h.connect('alice');
    const control = await h.connect('control');
    await h.gateway.publish('alice', { event: 'agent_thinking', runId: 'r1', data: { text: 'a' } });
    await h.gateway.publish('alice', { event: 'custom.note', critical: false, data: 1 });
    await alice.waitForEvents(2);
    expect(alice.events().every((e) => !e.critical)).toBe(true);
    await controlTimesOut(control);

    expect(alice.closedWith).toBeNull();
    await h.gateway.publish('alice', { event: 'agent_thinking', runId: 'r1', data: { text: 'b' } });
    expect((await alice.waitForEvents(3)).map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(alice.closedWith).toBeNull();
  });

  it('answers an ack for a seq never sent with bad_ack and stays open', async () => {
    await start();
    const alice = await h.connect('alice');
    await h.gateway.publish('alice', { event: 'agent_thinking', runId: 'r1', data: { text: 'a' } });
    await alice.waitForEvents(1);

    alice.ack(99);
    const error = await alice.waitForFrame((f): f is ErrorFrame => f.type === 'error');
    expect(error.code).toBe('bad_ack');
    expect(h.gateway.connections('alice')[0]?.ackedSeq).toBe(0);

    await h.gateway.publish('alice', { event: 'agent_thinking', runId: 'r1', data: { text: 'b' } });
    expect((await alice.waitForEvents(2)).map((e) => e.seq)).toEqual([1, 2]);
    alice.ack(2);
    await waitForAcked('alice', 2);
    expect(alice.closedWith).toBeNull();
  });
});

async function waitForAcked(userId: string, seq: number): Promise<void> {
  await waitFor(() => h.gateway.connections(userId)[0]?.ackedSeq === seq, {
    what: `${userId} acked ${seq}`,
  });
}
