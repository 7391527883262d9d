/**
 * The live message of the Redis engine (`wire.ts`, `decodeLive`): seven
 * fields and the payload last, so a payload may hold anything, newlines too.
 * The event comes framed (`StoredEvent`): its frame is the one the gateway
 * would build from the same fields (`encodeEventFrame`).
 */
import { describe, expect, it } from 'vitest';
import { decodeLive } from '../../src/broker/redis/wire.js';
import { encodeEventFrame } from '../../src/protocol/event-frame.js';
import { encodeTextFrame } from '../../src/gateway/wire-frame.js';

describe('decodeLive', () => {
  it('reads every field, the payload last and whole', () => {
    const payload = '"event":"note","critical":true,"data":{"a":1,\n"b":"x\\ny"}}';
    const live = decodeLive(`e1\n7\nid-7\nnote\n1\n1234\nnode-a\n${payload}`);
    expect(live?.epoch).toBe('e1');
    const event = live?.event;
    expect(event).toMatchObject({
      seq: 7,
      id: 'id-7',
      event: 'note',
      critical: true,
      ts: 1234,
      payload,
      awaitedBy: 'node-a',
    });
    expect(event?.wire).toEqual(
      encodeTextFrame(encodeEventFrame({ seq: 7, id: 'id-7', ts: 1234, payload })),
    );
  });

  it('leaves awaitedBy out when it is empty, and takes an empty payload', () => {
    const live = decodeLive('e1\n1\nid\nnote\n0\n5\n\n');
    expect(live?.event).toMatchObject({ seq: 1, id: 'id', critical: false, ts: 5, payload: '' });
    expect(live?.event.awaitedBy).toBeUndefined();
  });

  it('frames a payload of more than one byte per character as UTF-8', () => {
    const payload = '"event":"note","critical":false,"data":"é ✓ 🎉"}';
    const live = decodeLive(`e1\n2\nid\nnote\n0\n5\n\n${payload}`);
    expect(live?.event.payload).toBe(payload);
    expect(live?.event.wire).toEqual(
      encodeTextFrame(encodeEventFrame({ seq: 2, id: 'id', ts: 5, payload })),
    );
  });

  it('refuses a message with fewer than seven fields before the payload', () => {
    expect(decodeLive('e1\n1\nid\nnote\n0\n5')).toBeUndefined();
    expect(decodeLive('')).toBeUndefined();
  });

  it('refuses a message whose seq or ts is not an integer', () => {
    expect(decodeLive('e1\nx\nid\nnote\n0\n5\n\n{}')).toBeUndefined();
    expect(decodeLive('e1\n1\nid\nnote\n0\nnow\n\n{}')).toBeUndefined();
  });
});
