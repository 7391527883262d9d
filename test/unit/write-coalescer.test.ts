import type { WebSocket } from 'ws';
import { describe, expect, it } from 'vitest';
import { RecordingSocket } from '../helpers/recording-socket.js';
import { COALESCE_BELOW_BYTES, SocketWriter } from '../../src/gateway/socket-writer.js';
import { DIRECT_WRITES_PER_TURN, WriteCoalescer } from '../../src/gateway/write-coalescer.js';

/** What `SocketWriter.writeFrame` reads of the ws socket: that it is open. */
const OPEN_WS = { readyState: 1, OPEN: 1 } as unknown as WebSocket;

function writer(coalescer = new WriteCoalescer()) {
  const socket = new RecordingSocket();
  return { socket, writer: new SocketWriter(OPEN_WS, socket, coalescer) };
}

const endOfTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('WriteCoalescer with SocketWriter', () => {
  it("writes a turn's first small frame at once and the rest of the turn together", async () => {
    const { socket, writer: w } = writer();
    w.writeFrame(Buffer.from('a'), '');
    // Not held to the end of the turn: a steady stream (one frame per turn) waits for nothing.
    expect(socket.calls).toEqual([['a']]);
    w.writeFrame(Buffer.from('b'), '');
    w.writeFrame(Buffer.from('c'), '');
    expect(socket.calls).toEqual([['a']]);
    await endOfTurn();
    expect(socket.calls).toEqual([['a'], ['b', 'c']]);
  });

  it('starts over in the next turn', async () => {
    const { socket, writer: w } = writer();
    w.writeFrame(Buffer.from('a'), '');
    w.writeFrame(Buffer.from('b'), '');
    await endOfTurn();
    w.writeFrame(Buffer.from('c'), '');
    expect(socket.calls).toEqual([['a'], ['b'], ['c']]);
    w.writeFrame(Buffer.from('d'), '');
    await endOfTurn();
    expect(socket.calls).toEqual([['a'], ['b'], ['c'], ['d']]);
  });

  it('keeps a turn of many sockets apart: each writes its own first frame at once', async () => {
    const first = writer();
    const second = writer();
    first.writer.writeFrame(Buffer.from('1a'), '');
    second.writer.writeFrame(Buffer.from('2a'), '');
    first.writer.writeFrame(Buffer.from('1b'), '');
    expect(first.socket.calls).toEqual([['1a']]);
    expect(second.socket.calls).toEqual([['2a']]);
    await endOfTurn();
    expect(first.socket.calls).toEqual([['1a'], ['1b']]);
  });

  it('holds every small frame of a burst turn, past the sockets it writes at once', async () => {
    const coalescer = new WriteCoalescer();
    const sockets = Array.from({ length: DIRECT_WRITES_PER_TURN + 2 }, () => writer(coalescer));
    for (const { writer: w } of sockets) w.writeFrame(Buffer.from('x'), '');
    const writtenAtOnce = sockets.filter(({ socket }) => socket.calls.length === 1).length;
    expect(writtenAtOnce).toBe(DIRECT_WRITES_PER_TURN);
    await endOfTurn();
    expect(sockets.every(({ socket }) => socket.calls.length === 1)).toBe(true);
    // The next turn is light again.
    sockets[sockets.length - 1]!.writer.writeFrame(Buffer.from('y'), '');
    expect(sockets[sockets.length - 1]!.socket.calls).toEqual([['x'], ['y']]);
  });

  it('writes a large frame at once, even after a held one, and keeps the order', async () => {
    const { socket, writer: w } = writer();
    const large = Buffer.alloc(COALESCE_BELOW_BYTES, 'x');
    w.writeFrame(Buffer.from('a'), '');
    w.writeFrame(Buffer.from('b'), '');
    w.writeFrame(large, '');
    // What the turn held now fills a system call: it leaves at once, in order.
    expect(socket.calls.flat().map((chunk) => chunk.length)).toEqual([1, 1, large.length]);
    await endOfTurn();
    expect(socket.calls.flat()).toHaveLength(3);
  });

  it('holdTurn: a welcome and the replay behind it leave in one system call', async () => {
    const { socket, writer: w } = writer();
    w.holdTurn();
    w.sendText('welcome');
    w.writeFrame(Buffer.from('e1'), '');
    w.writeFrame(Buffer.from('e2'), '');
    expect(socket.calls).toEqual([]);
    await endOfTurn();
    expect(socket.calls).toHaveLength(1);
    expect(socket.calls[0]!.slice(1)).toEqual(['e1', 'e2']);
    expect(socket.calls[0]![0]).toContain('welcome');
  });
});
