import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  AckScheduler,
  DEFAULT_ACK_DELAY_MS,
  DEFAULT_ACK_MAX_BATCH,
} from '../../src/client/index.js';

describe('AckScheduler', () => {
  let sent: number[];
  let acks: AckScheduler;
  beforeEach(() => {
    vi.useFakeTimers();
    sent = [];
    acks = new AckScheduler((seq) => sent.push(seq));
  });
  afterEach(() => {
    acks.dispose();
    vi.useRealTimers();
  });

  it('acks a critical event at once, covering the events before it', () => {
    acks.received(1, false);
    acks.received(2, false);
    expect(sent).toEqual([]);
    acks.received(3, true);
    expect(sent).toEqual([3]);
    vi.advanceTimersByTime(DEFAULT_ACK_DELAY_MS * 2);
    expect(sent).toEqual([3]);
  });

  it('batches non-critical events until the delay passes', () => {
    acks.received(1, false);
    vi.advanceTimersByTime(DEFAULT_ACK_DELAY_MS - 1);
    acks.received(2, false);
    expect(sent).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(sent).toEqual([2]);
  });

  it('acks at once when a batch reaches maxBatch events', () => {
    for (let seq = 1; seq < DEFAULT_ACK_MAX_BATCH; seq++) acks.received(seq, false);
    expect(sent).toEqual([]);
    acks.received(DEFAULT_ACK_MAX_BATCH, false);
    expect(sent).toEqual([DEFAULT_ACK_MAX_BATCH]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('sends increasing acks only, and re-acks a repeated critical event only when needed', () => {
    acks.received(5, true);
    acks.received(5, true); // already acked: nothing new to say
    acks.received(4, false);
    vi.advanceTimersByTime(DEFAULT_ACK_DELAY_MS);
    expect(sent).toEqual([5]);
    acks.received(6, false);
    acks.received(6, true); // the repeat is critical: ack the pending batch now
    expect(sent).toEqual([5, 6]);
  });

  it('sends nothing after dispose', () => {
    acks.received(1, false);
    acks.dispose();
    vi.advanceTimersByTime(DEFAULT_ACK_DELAY_MS * 10);
    expect(sent).toEqual([]);
    expect(acks.acked).toBe(0);
  });

  it('honours custom batching options', () => {
    const custom = new AckScheduler((seq) => sent.push(seq), { delayMs: 10, maxBatch: 2 });
    custom.received(1, false);
    custom.received(2, false);
    expect(sent).toEqual([2]);
    custom.received(3, false);
    vi.advanceTimersByTime(10);
    expect(sent).toEqual([2, 3]);
  });
});
