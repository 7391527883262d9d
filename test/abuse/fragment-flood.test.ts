/**
 * The fragment cap (PROTOCOL.md section 2, `limits.maxFragments`, enforced by
 * ws's own `maxFragments`): a message split into more frames than the cap
 * closes its connection with 1008, long before the size cap would, and a flood
 * of tiny fragments never pins server memory or disturbs other users.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';
import { MiB, settledHeapUsed } from '../helpers/heap.js';
import { clientFrame, RawWebSocket } from '../helpers/raw-websocket.js';
import { waitFor } from '../helpers/wait-for.js';

const TEXT = 0x1;
const CONTINUATION = 0x0;
const PING = 0x9;

let h: Harness;
afterEach(async () => h?.close());

function portOf(harness: Harness): number {
  return Number(new URL(harness.wsUrl).port);
}

/** `{"type":"ping"}` split into `parts` data frames, with optional control frames between them. */
function fragmentedPing(parts: number, pingsBetween = false): Buffer {
  const text = Buffer.from('{"type":"ping"}');
  const frames: Buffer[] = [];
  for (let i = 0; i < parts; i++) {
    const start = Math.floor((i * text.length) / parts);
    const end = Math.floor(((i + 1) * text.length) / parts);
    frames.push(
      clientFrame({
        opcode: i === 0 ? TEXT : CONTINUATION,
        fin: i === parts - 1,
        payload: text.subarray(start, end),
      }),
    );
    if (pingsBetween && i < parts - 1) frames.push(clientFrame({ opcode: PING, payload: 'x' }));
  }
  return Buffer.concat(frames);
}

/** One text frame of 1 byte, then `count` 1-byte continuations, never FIN. */
function tinyFragments(count: number): Buffer {
  const frames = [clientFrame({ opcode: TEXT, fin: false, payload: '{' })];
  for (let i = 0; i < count; i++) {
    frames.push(clientFrame({ opcode: CONTINUATION, fin: false, payload: ' ' }));
  }
  return Buffer.concat(frames);
}

function pongs(raw: RawWebSocket): number {
  return raw.json().filter((f) => (f as { type?: string }).type === 'pong').length;
}

describe('fragment cap', () => {
  it('a message of exactly maxFragments frames is served; one more closes with 1008', async () => {
    h = await startGateway({ limits: { maxFragments: 8 } });
    const token = await h.token('frag-user');
    const atCap = await RawWebSocket.upgrade(portOf(h), '/v1/ws', token);
    // Control frames between fragments are allowed by RFC 6455 and not counted.
    atCap.write(fragmentedPing(8, true));
    await waitFor(() => pongs(atCap) === 1, { what: 'the pong to an 8-fragment ping' });
    expect(atCap.closeCode).toBeNull();

    const overCap = await RawWebSocket.upgrade(portOf(h), '/v1/ws', token);
    overCap.write(fragmentedPing(9));
    await waitFor(() => overCap.closeCode, { what: 'the close frame' });
    expect(overCap.closeCode).toBe(1008);
    expect(pongs(overCap)).toBe(0);
    atCap.destroy();
    overCap.destroy();
  });

  it('thousands of 1-byte continuations close with 1008 far below maxPayload; a control user gets every event', async () => {
    h = await startGateway({ limits: { handshakesPerIpPerSecond: 1000 } });
    const control = await h.connect('control', { autoAck: true });
    const token = await h.token('flooder');
    // 5000 bytes of payload: well under the 64 KiB frame cap, so only the
    // fragment cap can stop it; without it the message would stay open.
    const flooders = await Promise.all(
      Array.from({ length: 10 }, () => RawWebSocket.upgrade(portOf(h), '/v1/ws', token)),
    );
    const published: Promise<unknown>[] = [];
    for (const raw of flooders) {
      raw.write(tinyFragments(5000));
      published.push(h.gateway.publish('control', { event: 'tick', data: { user: 'control' } }));
    }
    await Promise.all(published);
    await waitFor(() => flooders.every((raw) => raw.closeCode !== null), {
      what: 'a close frame on every flooder',
    });
    expect(flooders.map((raw) => raw.closeCode)).toEqual(Array(10).fill(1008));
    for (const raw of flooders) raw.destroy();
    await waitFor(() => h.gateway.connections('flooder').length === 0, {
      what: 'the flooders gone from the registry',
    });
    await control.waitForEvents(10);
    expect(control.seqs()).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(control.closedWith).toBeNull();
  });

  it('a flood of 64 K tiny fragments on many sockets does not pin server memory', async () => {
    h = await startGateway({
      closeTimeoutMs: 500,
      limits: { handshakesPerIpPerSecond: 1000, maxConnectionsPerUser: 50 },
    });
    const token = await h.token('flooder');
    const baseline = await settledHeapUsed();
    // 20 sockets × 60 000 fragments. Uncapped, each non-empty fragment would
    // be held as a Buffer view until the message ends: >1 M objects, well over
    // 50 MiB of heap, for as long as the sockets stay open.
    const flooders = await Promise.all(
      Array.from({ length: 20 }, () => RawWebSocket.upgrade(portOf(h), '/v1/ws', token)),
    );
    const flood = tinyFragments(60_000);
    for (const raw of flooders) raw.write(flood);
    await waitFor(() => flooders.every((raw) => raw.closeCode !== null), {
      timeoutMs: 10_000,
      what: 'a close frame on every flooder',
    });
    expect(flooders.map((raw) => raw.closeCode)).toEqual(Array(20).fill(1008));
    // Measured while the hostile sockets are still open (closing, not yet destroyed).
    const during = await settledHeapUsed();
    expect(during - baseline).toBeLessThan(20 * MiB);
    for (const raw of flooders) raw.destroy();
    await waitFor(() => h.gateway.connectionCount === 0, { what: 'an empty registry' });
  });
});
