/**
 * `TurnWrites` (the Redis engine's links): what a held link writes in one
 * turn leaves at the end of the turn in one system call, in order; a link is
 * corked once per turn however often it is held; `releaseNow` lets it go.
 */
import { describe, expect, it } from 'vitest';
import { RecordingSocket } from '../helpers/recording-socket.js';
import { TurnWrites } from '../../src/broker/redis/turn-writes.js';

const endOfTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('TurnWrites', () => {
  it("lets a turn's commands go together at the end of the turn, in order", async () => {
    const turns = new TurnWrites();
    const link = new RecordingSocket();
    for (const command of ['a', 'b', 'c']) {
      turns.hold(link);
      link.write(command);
    }
    expect(link.calls).toEqual([]);
    expect(link.writableCorked).toBe(1);
    await endOfTurn();
    expect(link.calls).toEqual([['a', 'b', 'c']]);
    expect(link.writableCorked).toBe(0);
  });

  it('holds each link of a turn, and starts over in the next turn', async () => {
    const turns = new TurnWrites();
    const command = new RecordingSocket();
    const subscriber = new RecordingSocket();
    turns.hold(command);
    command.write('read');
    turns.hold(subscriber);
    subscriber.write('subscribe');
    await endOfTurn();
    expect(command.calls).toEqual([['read']]);
    expect(subscriber.calls).toEqual([['subscribe']]);
    turns.hold(command);
    command.write('ack');
    command.write('read');
    await endOfTurn();
    expect(command.calls).toEqual([['read'], ['ack', 'read']]);
  });

  it('writes at once what an unheld link writes', () => {
    const link = new RecordingSocket();
    link.write('publish');
    expect(link.calls).toEqual([['publish']]);
  });

  it('lets every held link go on releaseNow (closing)', async () => {
    const turns = new TurnWrites();
    const link = new RecordingSocket();
    turns.hold(link);
    link.write('quit');
    turns.releaseNow();
    expect(link.calls).toEqual([['quit']]);
    // The end of the turn finds nothing more to release.
    await endOfTurn();
    expect(link.writableCorked).toBe(0);
  });
});
