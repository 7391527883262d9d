import { describe, expect, it } from 'vitest';
import { IdSource } from '../../src/broker/id-source.js';

// What the handshake and the SSE cursor accept as an epoch (docs/protocol.md).
const PROTOCOL_EPOCH = /^[A-Za-z0-9_-]{1,64}$/;

describe('IdSource', () => {
  it('never repeats an id or an epoch, within a source or across sources', () => {
    const sources = [new IdSource(), new IdSource()];
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      for (const source of sources) {
        seen.add(source.eventId());
        seen.add(source.epoch());
      }
    }
    expect(seen.size).toBe(40_000);
  });

  it('makes epochs a client can send back, and event ids of the documented shape', () => {
    const source = new IdSource();
    for (let i = 0; i < 1_000; i++) source.epoch();
    const epoch = source.epoch();
    expect(epoch).toMatch(/^e_/);
    expect(epoch).toMatch(PROTOCOL_EPOCH);
    expect(source.eventId()).toMatch(/^ev_[A-Za-z0-9_-]{8,}$/);
  });

  it('draws its prefix at random: two sources share none', () => {
    const prefixOf = (id: string): string => id.split('_').slice(1, -1).join('_');
    expect(prefixOf(new IdSource().eventId())).not.toBe(prefixOf(new IdSource().eventId()));
  });
});
