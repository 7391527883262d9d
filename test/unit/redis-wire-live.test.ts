/**
 * The live message of the Redis engine (`wire.ts`, `decodeLive`): seven
 * fields and the payload last, so a payload may hold anything, newlines too.
 */
import { describe, expect, it } from 'vitest';
import { decodeLive } from '../../src/broker/redis/wire.js';

describe('decodeLive', () => {
  it('reads every field, the payload last and whole', () => {
    expect(decodeLive('e1\n7\nid-7\nnote\n1\n1234\nnode-a\n"a":1,\n"b":"x\\ny"}')).toEqual({
      epoch: 'e1',
      event: {
        seq: 7,
        id: 'id-7',
        event: 'note',
        critical: true,
        ts: 1234,
        payload: '"a":1,\n"b":"x\\ny"}',
        awaitedBy: 'node-a',
      },
    });
  });

  it('leaves awaitedBy out when it is empty, and takes an empty payload', () => {
    const live = decodeLive('e1\n1\nid\nnote\n0\n5\n\n');
    expect(live?.event).toEqual({
      seq: 1,
      id: 'id',
      event: 'note',
      critical: false,
      ts: 5,
      payload: '',
    });
    expect(live?.event).not.toHaveProperty('awaitedBy');
  });

  it('refuses a message with fewer than seven fields before the payload', () => {
    expect(decodeLive('e1\n1\nid\nnote\n0\n5')).toBeUndefined();
    expect(decodeLive('')).toBeUndefined();
  });
});
