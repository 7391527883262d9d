/**
 * Publish-and-wait (PROTOCOL.md section 5, `?wait=`): the race where an agent
 * starts before the user's socket is open.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';
import { waitFor } from '../helpers/wait-for.js';

let h: Harness;
afterEach(async () => h?.close());

describe('publish with wait', () => {
  it('resolves when the user connects during the wait, with the event delivered in the replay', async () => {
    h = await startGateway();
    let settled = false;
    const publishing = h.gateway
      .publish('alice', { event: 'token', data: { hello: 1 } }, { waitMs: 10_000 })
      .finally(() => (settled = true));
    // Not delivered yet: nobody is connected.
    await waitFor(() => h.gateway.stats().events.published === 1, { what: 'the publish stored' });
    expect(settled).toBe(false);
    const client = await h.connect('alice');
    const result = await publishing;
    expect(result).toMatchObject({ seq: 1, delivered: 1, duplicate: false });
    await client.waitForEvents(1);
    expect(client.seqs()).toEqual([1]);
  });

  it('answers delivered: 0 when the time is up and nobody connected', async () => {
    h = await startGateway();
    const result = await h.gateway.publish('ghost', { event: 'token' }, { waitMs: 150 });
    expect(result).toMatchObject({ seq: 1, delivered: 0 });
  });

  it('a critical event counts as delivered only once acknowledged', async () => {
    h = await startGateway();
    const client = await h.connect('alice');
    let result: { delivered: number } | null = null;
    const publishing = h.gateway
      .publish(
        'alice',
        { event: 'agent_started', runId: 'r1', data: { agent: 'helper' } },
        { waitMs: 10_000 },
      )
      .then((r) => (result = r));
    const [event] = await client.waitForEvents(1);
    expect(event?.critical).toBe(true);
    expect(result).toBeNull();
    client.ack(event?.seq ?? 0);
    await publishing;
    expect(result).toMatchObject({ delivered: 1 });
  });

  it('counts every connection of the user that received it', async () => {
    h = await startGateway();
    await Promise.all([h.connect('alice'), h.connect('alice'), h.connect('alice')]);
    const result = await h.gateway.publish('alice', { event: 'token' }, { waitMs: 5000 });
    expect(result.delivered).toBe(3);
    const immediate = await h.gateway.publish('alice', { event: 'token' });
    expect(immediate.delivered).toBe(3);
  });

  it('refuses a wait over 30 s and malformed input with the field named', async () => {
    h = await startGateway();
    await expect(
      h.gateway.publish('alice', { event: 'token' }, { waitMs: 30_001 }),
    ).rejects.toMatchObject({
      status: 400,
      field: 'wait',
    });
    await expect(h.gateway.publish('alice', { event: 'Bad Name' })).rejects.toMatchObject({
      status: 400,
      field: 'event',
    });
    await expect(h.gateway.publish('not a user!', { event: 'token' })).rejects.toMatchObject({
      status: 400,
      field: 'userId',
    });
    await expect(
      h.gateway.publish('alice', { event: 'agent_thinking', runId: 'r1', data: { nope: 1 } }),
    ).rejects.toMatchObject({ status: 400, field: 'data.text' });
  });

  it('caps waiting publishes per user and per node with 429 too_many_waits, storing nothing, and frees the slots', async () => {
    h = await startGateway({ limits: { maxPendingWaits: 3, maxPendingWaitsPerUser: 2 } });
    const waiting = (userId: string): Promise<unknown> =>
      h.gateway.publish(userId, { event: 'token' }, { waitMs: 10_000 });
    const held = [waiting('alice'), waiting('alice')];
    await waitFor(() => h.gateway.stats().events.published === 2, { what: "alice's two waits" });

    // Past the per-user cap: refused before anything is stored; other users still wait.
    await expect(waiting('alice')).rejects.toMatchObject({
      status: 429,
      code: 'too_many_waits',
      field: 'wait',
      retryAfter: 5,
      message: expect.stringMatching(/maxPendingWaitsPerUser/),
    });
    expect(h.gateway.stats().events.published).toBe(2);
    held.push(waiting('bob'));
    await waitFor(() => h.gateway.stats().events.published === 3, { what: "bob's wait" });

    // Past the node cap: refused for a user with no wait of its own.
    await expect(waiting('carol')).rejects.toMatchObject({
      status: 429,
      code: 'too_many_waits',
      message: expect.stringMatching(/maxPendingWaits\b/),
    });
    // Without wait, nothing is capped.
    await expect(h.gateway.publish('carol', { event: 'token' })).resolves.toMatchObject({
      seq: 1,
    });
    const metrics = await h.gateway.metrics.registry.metrics();
    expect(metrics).toMatch(/agentsocket_publish_waits_pending 3\b/);
    expect(metrics).toMatch(/agentsocket_publish_wait_refusals_total\{limit="user"\} 1\b/);
    expect(metrics).toMatch(/agentsocket_publish_wait_refusals_total\{limit="node"\} 1\b/);

    // Deliveries settle the waits and free the slots.
    await Promise.all([h.connect('alice'), h.connect('bob')]);
    await Promise.all(held);
    expect(await waiting('alice')).toMatchObject({ delivered: 1 });
    expect(await h.gateway.metrics.registry.metrics()).toMatch(
      /agentsocket_publish_waits_pending 0\b/,
    );
  });
});
