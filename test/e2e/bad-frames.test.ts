/**
 * PROTOCOL.md section 2, "Frames" and the limits table: a malformed or
 * unknown client frame gets an `error` frame and the connection stays open;
 * too many of them in the window close it with 1008; a frame over the size
 * limit closes with 1009; a frame rate over the burst closes with 1008.
 *
 * Each test runs a bystander, bob, on the same gateway: whatever alice does,
 * bob receives every one of his events, in order, and stays open.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { GatewayLimits } from '../../src/gateway/options.js';
import type { ErrorFrame, PongFrame } from '../../src/protocol/frames.js';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';
import type { TestClient } from '../helpers/test-client.js';
import { waitFor } from '../helpers/wait-for.js';

let h: Harness;
let bob: TestClient;
let bobPublished = 0;
afterEach(async () => h?.close());

async function start(limits: Partial<GatewayLimits> = {}): Promise<void> {
  h = await startGateway({ limits });
  bob = await h.connect('bob', { autoAck: true });
  bobPublished = 0;
  await publishToBob(3);
}

async function publishToBob(count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    bobPublished++;
    await h.gateway.publish('bob', { event: 'note', data: bobPublished });
  }
}

/** Bob got every event published to him, in order, and is still open. */
async function expectBobUnaffected(): Promise<void> {
  await publishToBob(3);
  await bob.waitForEvents(bobPublished);
  const all = Array.from({ length: bobPublished }, (_, i) => i + 1);
  expect(bob.seqs()).toEqual(all);
  expect(bob.events().map((e) => e.data)).toEqual(all);
  expect(bob.closedWith).toBeNull();
}

function errorFrames(client: TestClient): ErrorFrame[] {
  return client.frames.filter((f): f is ErrorFrame => f.type === 'error');
}

async function closesTotal(code: number): Promise<number> {
  const text = await h.gateway.metrics.registry.metrics();
  const match = new RegExp(`agentsocket_closes_total\\{code="${code}"\\} (\\d+)`).exec(text);
  return Number(match?.[1] ?? 0);
}

describe('bad frames', () => {
  it('answers malformed, unknown and binary frames with bad_frame and stays open', async () => {
    await start();
    const alice = await h.connect('alice');
    const bad: (string | Buffer)[] = [
      '{nope',
      '[1,2]',
      '"ack"',
      '{"type":"subscribe","userId":"bob"}',
      '{"seq":1}',
      '{"type":"ack","seq":-1}',
      '{"type":"ack","seq":"1"}',
      '{"type":"refresh"}',
      Buffer.from([0x7b, 0x7d]),
    ];
    for (const [i, frame] of bad.entries()) {
      if (typeof frame === 'string') alice.send(frame);
      else alice.ws.send(frame, { binary: true });
      await waitFor(() => errorFrames(alice).length === i + 1, { what: `error frame ${i + 1}` });
      await publishToBob(1);
    }
    expect(errorFrames(alice).map((e) => e.code)).toEqual(bad.map(() => 'bad_frame'));
    for (const error of errorFrames(alice)) expect(error.message.length).toBeGreaterThan(0);

    // Nothing of it subscribed alice to anyone else; she still gets her own events.
    await h.gateway.publish('alice', { event: 'note', data: 'mine' });
    const events = await alice.waitForEvents(1);
    expect(events.map((e) => [e.seq, e.data])).toEqual([[1, 'mine']]);
    expect(alice.closedWith).toBeNull();
    await expectBobUnaffected();
  });

  it('closes with 1008 past limits.maxBadFrames in the window', async () => {
    const maxBadFrames = 3;
    await start({ maxBadFrames, badFrameWindowMs: 60_000 });
    const alice = await h.connect('alice');
    for (let i = 1; i <= maxBadFrames; i++) {
      alice.send('{nope');
      await waitFor(() => errorFrames(alice).length === i, { what: `error frame ${i}` });
    }
    // A good frame in between does not reset the count.
    alice.send({ type: 'ping' });
    await alice.waitForFrame((f): f is PongFrame => f.type === 'pong');
    expect(alice.closedWith).toBeNull();
    alice.send('{"type":"unknown"}');
    expect(await alice.waitForClose()).toMatchObject({ code: 1008 });
    expect(errorFrames(alice)).toHaveLength(maxBadFrames);
    await waitFor(async () => (await closesTotal(1008)) === 1, { what: 'a 1008 close counted' });
    await expectBobUnaffected();
  });

  it('accepts a frame of exactly limits.maxFrameBytes and closes with 1009 past it', async () => {
    const maxFrameBytes = 1024;
    await start({ maxFrameBytes });
    const alice = await h.connect('alice');
    const frameOf = (bytes: number): string => {
      const empty = JSON.stringify({ type: 'ping', pad: '' });
      return JSON.stringify({ type: 'ping', pad: 'x'.repeat(bytes - empty.length) });
    };
    const atLimit = frameOf(maxFrameBytes);
    expect(Buffer.byteLength(atLimit)).toBe(maxFrameBytes);
    alice.send(atLimit);
    await alice.waitForFrame((f): f is PongFrame => f.type === 'pong');
    expect(alice.closedWith).toBeNull();

    const over = frameOf(maxFrameBytes + 1);
    expect(Buffer.byteLength(over)).toBe(maxFrameBytes + 1);
    alice.send(over);
    expect(await alice.waitForClose()).toMatchObject({ code: 1009 });
    await waitFor(() => h.gateway.connections('alice').length === 0, { what: 'alice removed' });
    // Counted under the code sent, not as an abnormal 1006.
    expect(await closesTotal(1009)).toBe(1);
    expect(await closesTotal(1006)).toBe(0);
    await expectBobUnaffected();
  });

  it('caps a fragmented message by its total size: 1009', async () => {
    await start({ maxFrameBytes: 1024 });
    const alice = await h.connect('alice');
    // Fragments each under the limit, a message over it.
    for (let i = 0; i < 3; i++) alice.ws.send('x'.repeat(400), { fin: false });
    alice.ws.send('x', { fin: true });
    expect(await alice.waitForClose()).toMatchObject({ code: 1009 });
    await waitFor(() => h.gateway.connections('alice').length === 0, { what: 'alice removed' });
    expect(await closesTotal(1009)).toBe(1);
    await expectBobUnaffected();
  });

  it('caps a flood of tiny fragments by their count: 1008', async () => {
    // The default 64 KiB: 20 000 one-byte fragments stay under it.
    await start();
    const alice = await h.connect('alice');
    for (let i = 0; i < 20_000 && alice.closedWith === null; i++) {
      alice.ws.send(i === 0 ? '{' : ' ', { fin: false });
    }
    expect(await alice.waitForClose()).toMatchObject({ code: 1008 });
    await waitFor(() => h.gateway.connections('alice').length === 0, { what: 'alice removed' });
    expect(await closesTotal(1008)).toBe(1);
    await expectBobUnaffected();
  });

  it('closes with 1008 when the frame rate passes the burst', async () => {
    const frameBurst = 10;
    await start({ framesPerSecond: 5, frameBurst });
    const alice = await h.connect('alice');
    for (let i = 0; i < 5 * frameBurst; i++) alice.send({ type: 'ping' });
    expect(await alice.waitForClose()).toMatchObject({ code: 1008 });
    const pongs = alice.frames.filter((f) => f.type === 'pong').length;
    // The burst was served; the rest was not (at 5/s, hardly a token came back meanwhile).
    expect(pongs).toBeGreaterThanOrEqual(frameBurst);
    expect(pongs).toBeLessThan(5 * frameBurst);
    expect(await h.gateway.metrics.registry.metrics()).toMatch(
      /agentsocket_bad_frames_total\{reason="rate"\} 1\b/,
    );
    await expectBobUnaffected();
  });

  it('serves a burst of exactly limits.frameBurst frames', async () => {
    const frameBurst = 10;
    await start({ framesPerSecond: 5, frameBurst });
    const alice = await h.connect('alice');
    for (let i = 0; i < frameBurst; i++) alice.send({ type: 'ping' });
    await waitFor(() => alice.frames.filter((f) => f.type === 'pong').length === frameBurst, {
      what: `${frameBurst} pongs`,
    });
    expect(alice.closedWith).toBeNull();
    await h.gateway.publish('alice', { event: 'note', data: 1 });
    expect((await alice.waitForEvents(1))[0]?.seq).toBe(1);
    await expectBobUnaffected();
  });
});
