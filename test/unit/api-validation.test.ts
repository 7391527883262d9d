import { describe, expect, it } from 'vitest';
import type { GatewayError } from '../../src/errors.js';
import { parseBatch, parseBroadcast, parseWait } from '../../src/http/api-routes.js';

function caught(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (error) {
    return error as GatewayError;
  }
  throw new Error('expected a GatewayError');
}

describe('parseWait', () => {
  it('reads 0 when absent and the ms otherwise, up to 30000', () => {
    expect(parseWait(new URLSearchParams(''))).toBe(0);
    expect(parseWait(new URLSearchParams('wait=0'))).toBe(0);
    expect(parseWait(new URLSearchParams('wait=30000'))).toBe(30_000);
  });

  it('answers 400 naming wait past 30000, for non-integers and for repeats', () => {
    for (const query of [
      'wait=30001',
      'wait=-1',
      'wait=1.5',
      'wait=',
      'wait=1e3',
      'wait=1&wait=2',
    ]) {
      const error = caught(() => parseWait(new URLSearchParams(query)));
      expect(error.status).toBe(400);
      expect(error.toBody()).toEqual({
        error: {
          code: 'bad_request',
          message: 'wait must be an integer number of ms from 0 to 30000',
          field: 'wait',
        },
      });
    }
  });
});

describe('parseBatch', () => {
  const ok = { userId: 'alice', event: 'note', data: { n: 1 } };

  it('keeps items in input order with their user ids', () => {
    const items = parseBatch(
      { events: [ok, { ...ok, userId: 'bob' }, { ...ok, data: { n: 2 } }] },
      10,
      1024,
    );
    expect(items.map((item) => [item.userId, item.data])).toEqual([
      ['alice', { n: 1 }],
      ['bob', { n: 1 }],
      ['alice', { n: 2 }],
    ]);
  });

  it('names the index and field of the first bad item', () => {
    const badUser = caught(() =>
      parseBatch({ events: [ok, { ...ok, userId: 'no spaces' }] }, 10, 1024),
    );
    expect(badUser.toBody().error).toEqual({
      code: 'bad_request',
      message: 'events[1].userId must be 1-128 characters of [A-Za-z0-9._:@-], not only dots',
      field: 'events[1].userId',
    });
    const badEvent = caught(() =>
      parseBatch({ events: [ok, ok, { ...ok, event: 'Bad' }] }, 10, 1024),
    );
    expect(badEvent.toBody().error.field).toBe('events[2].event');
    const notObject = caught(() => parseBatch({ events: [ok, 'x'] }, 10, 1024));
    expect(notObject.toBody().error).toMatchObject({ field: 'events[1]', code: 'bad_request' });
    const agent = caught(() =>
      parseBatch(
        { events: [{ userId: 'a', event: 'agent_thinking', data: { text: 't' } }] },
        10,
        1024,
      ),
    );
    expect(agent.toBody().error).toMatchObject({ field: 'events[0].runId' });
  });

  it('answers 413 for data over the limit, naming the item', () => {
    const error = caught(() =>
      parseBatch({ events: [ok, { ...ok, data: 'x'.repeat(100) }] }, 10, 50),
    );
    expect(error.status).toBe(413);
    expect(error.toBody().error).toMatchObject({
      code: 'payload_too_large',
      field: 'events[1].data',
    });
  });

  it('answers 400 for a batch over the limit, an empty one, or a wrong shape', () => {
    const tooMany = caught(() => parseBatch({ events: [ok, ok, ok] }, 2, 1024));
    expect(tooMany.toBody().error).toEqual({
      code: 'bad_request',
      message: 'a batch holds at most 2 events, got 3',
      field: 'events',
    });
    expect(caught(() => parseBatch({ events: [] }, 2, 1024)).toBody().error.field).toBe('events');
    expect(caught(() => parseBatch([ok], 2, 1024)).toBody().error.field).toBe('body');
    expect(caught(() => parseBatch({ events: [ok], more: 1 }, 2, 1024)).toBody().error).toEqual({
      code: 'bad_request',
      message: 'unknown field "more"',
      field: 'more',
    });
  });
});

describe('parseBroadcast', () => {
  it('takes an event name and optional data', () => {
    expect(parseBroadcast({ event: 'maintenance' }, 100)).toEqual({ event: 'maintenance' });
    expect(parseBroadcast({ event: 'maintenance', data: { at: 1 } }, 100)).toEqual({
      event: 'maintenance',
      data: { at: 1 },
    });
  });

  it('refuses a bad name (400), unknown fields (400) and data over the limit (413)', () => {
    expect(caught(() => parseBroadcast({ event: '1x' }, 100)).toBody().error).toMatchObject({
      code: 'bad_request',
      field: 'event',
    });
    expect(caught(() => parseBroadcast({ event: 'x', seq: 1 }, 100)).toBody().error.field).toBe(
      'seq',
    );
    const big = caught(() => parseBroadcast({ event: 'x', data: 'é'.repeat(60) }, 100));
    expect(big.status).toBe(413);
    // Bytes, not characters: 60 two-byte characters and two quotes.
    expect(big.message).toBe('data is 122 bytes serialized; the limit is 100');
  });

  it('checks data as an event does: 200 000 arrays deep is a 400 naming data, not a stack overflow', () => {
    const deep: unknown = JSON.parse(`${'['.repeat(200_000)}0${']'.repeat(200_000)}`);
    const error = caught(() => parseBroadcast({ event: 'x', data: deep }, 1024 * 1024));
    expect(error.toBody().error).toEqual({
      code: 'bad_request',
      message: 'data nests arrays and objects more than 64 deep',
      field: 'data',
    });
    expect(error.status).toBe(400);
    const shallow = caught(() => parseBroadcast({ event: 'x', data: [[[0]]] }, 1024, 2));
    expect(shallow.toBody().error.field).toBe('data');
    expect(parseBroadcast({ event: 'x', data: [[0]] }, 1024, 2).data).toEqual([[0]]);
    const inBatch = caught(() =>
      parseBatch({ events: [{ userId: 'a', event: 'x', data: deep }] }, 10, 1024 * 1024),
    );
    expect(inBatch.toBody().error).toMatchObject({ code: 'bad_request', field: 'events[0].data' });
  });
});
