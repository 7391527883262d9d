import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CURSOR_STORAGE_KEY,
  SeqTracker,
  loadCursor,
  saveCursor,
} from '../../src/client/index.js';
import { MapStorage } from '../helpers/map-storage.js';

describe('SeqTracker', () => {
  it('delivers new seqs and drops every seq <= lastSeq', () => {
    const tracker = new SeqTracker();
    expect(tracker.onWelcome('e1')).toBe('first');
    const delivered = [1, 2, 2, 3, 1, 4, 4, 3, 5].filter((seq) => tracker.accept(seq));
    expect(delivered).toEqual([1, 2, 3, 4, 5]);
    expect(tracker.cursor()).toEqual({ epoch: 'e1', lastSeq: 5 });
  });

  it('delivers a strictly increasing sequence, whatever replays and repeats arrive', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 200 }), { maxLength: 300 }), (arrivals) => {
        const tracker = new SeqTracker();
        tracker.onWelcome('e');
        const delivered: number[] = [];
        let max = 0;
        for (const seq of arrivals) {
          const accepted = tracker.accept(seq);
          // Delivered exactly when it is above everything seen before.
          expect(accepted).toBe(seq > max);
          if (accepted) delivered.push(seq);
          max = Math.max(max, seq);
        }
        for (let i = 1; i < delivered.length; i++) {
          expect(delivered[i]).toBeGreaterThan(delivered[i - 1]!);
        }
        expect(new Set(delivered).size).toBe(delivered.length);
        expect(tracker.lastSeq).toBe(max);
      }),
    );
  });

  it('keeps the cursor across a welcome of the same epoch (a resume)', () => {
    const tracker = new SeqTracker();
    tracker.onWelcome('e1');
    tracker.accept(7);
    expect(tracker.onWelcome('e1')).toBe('same-epoch');
    expect(tracker.accept(7)).toBe(false);
    expect(tracker.accept(8)).toBe(true);
  });

  it('resets on a new epoch: old seqs are void and seq 1 is new again', () => {
    const tracker = new SeqTracker();
    tracker.onWelcome('e1');
    tracker.accept(40);
    expect(tracker.onWelcome('e2')).toBe('new-epoch');
    expect(tracker.cursor()).toEqual({ epoch: 'e2', lastSeq: 0 });
    expect(tracker.accept(1)).toBe(true);
    expect(tracker.accept(1)).toBe(false);
  });

  it("starts a new epoch's cursor before the welcome's replay.from, so a reconnect asks for nothing it has", () => {
    // A Redis restart moved the stream to e2 keeping seqs 1..17, which this
    // client holds from e1: the welcome replays from 18.
    const tracker = new SeqTracker({ epoch: 'e1', lastSeq: 20 });
    expect(tracker.onWelcome('e2', 18)).toBe('new-epoch');
    expect(tracker.cursor()).toEqual({ epoch: 'e2', lastSeq: 17 });
    expect(tracker.accept(17)).toBe(false);
    expect(tracker.accept(18)).toBe(true);
  });

  it('has no cursor before the first welcome and starts from a stored one', () => {
    expect(new SeqTracker().cursor()).toBeNull();
    const resumed = new SeqTracker({ epoch: 'e9', lastSeq: 12 });
    expect(resumed.onWelcome('e9')).toBe('same-epoch');
    expect(resumed.accept(12)).toBe(false);
    expect(resumed.accept(13)).toBe(true);
  });
});

describe('cursor storage', () => {
  it('round-trips a cursor under its key', () => {
    const storage = new MapStorage();
    saveCursor(storage, DEFAULT_CURSOR_STORAGE_KEY, { epoch: 'e_1', lastSeq: 42 });
    expect(loadCursor(storage, DEFAULT_CURSOR_STORAGE_KEY)).toEqual({ epoch: 'e_1', lastSeq: 42 });
    expect(loadCursor(storage, 'other')).toBeNull();
  });

  it('reads anything malformed as no cursor', () => {
    const storage = new MapStorage();
    for (const bad of [
      'not json',
      'null',
      '[]',
      '{"epoch":"e"}',
      '{"epoch":"","lastSeq":1}',
      '{"epoch":"e","lastSeq":-1}',
      '{"epoch":"e","lastSeq":1.5}',
      '{"epoch":5,"lastSeq":1}',
      JSON.stringify({ epoch: 'e'.repeat(2000), lastSeq: 1 }),
    ]) {
      storage.setItem('k', bad);
      expect(loadCursor(storage, 'k')).toBeNull();
    }
  });
});
