/**
 * PROTOCOL.md section 2: the server sends `ping` frames every `heartbeatMs`;
 * a client that answers stays open; a silent one is closed with 4408 (after
 * `heartbeatTimeoutMs`, default twice `heartbeatMs`); a client `ping` gets a
 * `pong`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ClientFrame, PongFrame, ServerFrame } from '../../src/protocol/frames.js';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';
import type { TestClient } from '../helpers/test-client.js';
import { waitFor } from '../helpers/wait-for.js';

const HEARTBEAT_MS = 100;

let h: Harness;
afterEach(async () => h?.close());

function pings(client: TestClient): number {
  return client.frames.filter((f) => f.type === 'ping').length;
}

/** Answers every server `ping` with `reply` (by default a `pong`, as the SDK does). */
function answerPings(client: TestClient, reply: ClientFrame = { type: 'pong' }): void {
  client.ws.on('message', (data) => {
    if ((JSON.parse(data.toString()) as ServerFrame).type === 'ping') client.send(reply);
  });
}

describe('heartbeat', () => {
  it('announces the interval in the welcome and sends ping frames', async () => {
    h = await startGateway({ heartbeatMs: HEARTBEAT_MS });
    const alice = await h.connect('alice');
    answerPings(alice);
    expect((await alice.welcome()).heartbeatMs).toBe(HEARTBEAT_MS);
    await waitFor(() => pings(alice) >= 2, { what: 'two pings' });
    expect(alice.frames.filter((f) => f.type === 'ping')[0]).toEqual({ type: 'ping' });
  });

  it('keeps a client that answers pong open over many heartbeat timeouts', async () => {
    // A timeout of five heartbeats, so an event-loop stall of this loaded test
    // process (client and server share it) cannot pass for a silent client.
    const heartbeatTimeoutMs = 5 * HEARTBEAT_MS;
    h = await startGateway({ heartbeatMs: HEARTBEAT_MS, heartbeatTimeoutMs });
    const alice = await h.connect('alice');
    answerPings(alice);
    const silent = await h.connect('bob');
    // The silent control proves the timeout is really enforced meanwhile.
    expect(await silent.waitForClose(5000)).toMatchObject({ code: 4408 });
    // Twenty heartbeats are four heartbeat timeouts.
    await waitFor(() => pings(alice) >= 20 || alice.closedWith, {
      timeoutMs: 20_000,
      what: 'twenty pings',
    });
    expect(alice.closedWith).toBeNull();
    expect(h.gateway.connections('alice')[0]?.state).toBe('open');
    await h.gateway.publish('alice', { event: 'note', data: 'still here' });
    expect((await alice.waitForEvents(1))[0]?.data).toBe('still here');
  });

  it('closes a client that sends nothing with 4408', async () => {
    h = await startGateway({ heartbeatMs: HEARTBEAT_MS });
    const openedAt = Date.now();
    const alice = await h.connect('alice');
    const closed = await alice.waitForClose(5000);
    expect(closed.code).toBe(4408);
    // It was pinged first, and not cut off before the timeout.
    expect(pings(alice)).toBeGreaterThanOrEqual(1);
    expect(Date.now() - openedAt).toBeGreaterThanOrEqual(2 * HEARTBEAT_MS);
    await waitFor(() => h.gateway.connectionCount === 0, { what: 'the registry empty' });
    expect(await h.gateway.metrics.registry.metrics()).toMatch(
      /agentsocket_closes_total\{code="4408"\} 1\b/,
    );
  });

  it('counts any client frame as a sign of life', async () => {
    h = await startGateway({ heartbeatMs: HEARTBEAT_MS, heartbeatTimeoutMs: 5 * HEARTBEAT_MS });
    const alice = await h.connect('alice');
    // Pings, never a pong: still alive.
    answerPings(alice, { type: 'ping' });
    await waitFor(() => pings(alice) >= 15 || alice.closedWith, {
      timeoutMs: 20_000,
      what: 'fifteen pings',
    });
    expect(alice.closedWith).toBeNull();
  });

  it('answers a client ping with a pong', async () => {
    // A long heartbeat, so no server frame but the pong can arrive.
    h = await startGateway({ heartbeatMs: 60_000 });
    const alice = await h.connect('alice');
    alice.send({ type: 'ping' });
    const pong = await alice.waitForFrame((f): f is PongFrame => f.type === 'pong');
    expect(pong).toEqual({ type: 'pong' });
    expect(alice.frames.map((f) => f.type)).toEqual(['welcome', 'pong']);
  });
});

describe('WebSocket-level pings', () => {
  it('are answered with pongs and count against the frame rate', async () => {
    h = await startGateway({ limits: { framesPerSecond: 5, frameBurst: 10 } });
    const client = await h.connect('pinger');
    let pongs = 0;
    client.ws.on('pong', () => pongs++);
    client.ws.ping('a');
    await waitFor(() => pongs === 1, { what: 'a pong' });
    for (let i = 0; i < 50; i++) client.ws.ping('flood');
    expect((await client.waitForClose()).code).toBe(1008);
    expect(pongs).toBeLessThanOrEqual(11);
  });
});

describe('WebSocket-level pongs', () => {
  it('count against the frame rate like any client frame', async () => {
    h = await startGateway({ limits: { framesPerSecond: 5, frameBurst: 10 } });
    const client = await h.connect('ponger');
    for (let i = 0; i < 50; i++) client.ws.pong('unsolicited');
    expect((await client.waitForClose()).code).toBe(1008);
  });
});
