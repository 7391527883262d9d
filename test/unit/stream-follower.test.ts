/**
 * StreamFollower without Redis: live messages in, `onEvent`/`onResync` out,
 * with a history the test controls, so each rule of the follower is pinned.
 */
import { describe, expect, it } from 'vitest';
import type { StreamEvent } from '../../src/broker/broker.js';
import { StreamFollower, type FollowerRead } from '../../src/broker/redis/stream-follower.js';
import { waitFor } from '../helpers/wait-for.js';

function ev(seq: number): StreamEvent {
  return { seq, id: `id-${seq}`, event: 'note', critical: false, ts: 1, payload: `"seq":${seq}}` };
}

interface Harness {
  follower: StreamFollower;
  seqs: number[];
  resyncs: number;
  reads: { seq: number; epoch: string }[];
  /** Head reads (a start after a link cut that came before any message). */
  headReads: number;
  /** What the history holds: events 1..head of `epoch`, trimmed below `first`. */
  history: { epoch: string; head: number; first: number; fail: boolean };
  /** While set, reads wait for it. */
  gate: Promise<void> | undefined;
}

function harness(maxPending = 100): Harness {
  const h: Harness = {
    seqs: [],
    resyncs: 0,
    reads: [],
    headReads: 0,
    history: { epoch: 'e1', head: 0, first: 1, fail: false },
    gate: undefined,
    follower: undefined as unknown as StreamFollower, // set just below
  };
  h.follower = new StreamFollower({
    maxPending,
    retryDelayMs: () => 10,
    readAfter: async (seq, epoch): Promise<FollowerRead> => {
      h.reads.push({ seq, epoch });
      if (h.gate) await h.gate;
      if (h.history.fail) throw new Error('redis down');
      const { head, first } = h.history;
      const after = epoch === h.history.epoch ? seq : 0;
      const events: StreamEvent[] = [];
      for (let s = Math.max(after + 1, first); s <= head; s++) events.push(ev(s));
      return {
        epoch: h.history.epoch,
        headSeq: head,
        gap: epoch !== h.history.epoch || after + 1 < first,
        events,
      };
    },
    readHead: async () => {
      h.headReads++;
      if (h.gate) await h.gate;
      if (h.history.fail) throw new Error('redis down');
      return { epoch: h.history.epoch, headSeq: h.history.head };
    },
    onEvent: (epoch, event) => {
      expect(epoch).toBe(h.history.epoch);
      h.seqs.push(event.seq);
    },
    onResync: () => h.resyncs++,
  });
  return h;
}

describe('StreamFollower', () => {
  it('hands over in order and drops what it already handed over', async () => {
    const h = harness();
    h.follower.start('e1', 0);
    for (const s of [1, 2, 2, 1, 3]) h.follower.live('e1', ev(s));
    await waitFor(() => h.seqs.length >= 3);
    expect(h.seqs).toEqual([1, 2, 3]);
    expect(h.reads).toEqual([]);
  });

  it('positions itself at the first live message: hands it over and what follows, reading nothing', async () => {
    const h = harness();
    h.history.head = 10;
    expect(h.follower.position).toBeUndefined();
    h.follower.live('e1', ev(7));
    // Handed over in the call itself: nothing before it is owed.
    expect(h.seqs).toEqual([7]);
    expect(h.follower.position).toEqual({ epoch: 'e1', lastSeq: 7 });
    for (const s of [8, 7, 10]) h.follower.live('e1', ev(s));
    await waitFor(() => h.seqs.length >= 4);
    expect(h.seqs).toEqual([7, 8, 9, 10]);
    // Only the gap (9) was read; no head read, no resync.
    expect(h.reads).toEqual([{ seq: 8, epoch: 'e1' }]);
    expect(h.headReads).toBe(0);
    expect(h.resyncs).toBe(0);
  });

  it('after a link cut before any message: starts at the head with one resync, then goes on live', async () => {
    const h = harness();
    h.history.head = 5;
    let open!: () => void;
    h.gate = new Promise<void>((resolve) => (open = resolve));
    h.follower.catchUp();
    await waitFor(() => h.headReads === 1, { what: 'the head read' });
    // Messages of the renewed subscription wait behind the head read.
    h.follower.live('e1', ev(5));
    h.follower.live('e1', ev(6));
    h.follower.catchUp(); // a second cut while the head read is in flight
    expect(h.seqs).toEqual([]);
    h.gate = undefined;
    open();
    await waitFor(() => h.seqs.length >= 1 && h.follower.pending === 0);
    expect(h.resyncs).toBe(1);
    expect(h.seqs).toEqual([6]);
    expect(h.follower.position).toEqual({ epoch: 'e1', lastSeq: 6 });
    // The second cut came after the head read started: it is read after it.
    expect(h.reads).toEqual([{ seq: 6, epoch: 'e1' }]);
    expect(h.headReads).toBe(1);
  });

  it('retries a failed head read, and bounds what waits behind it', async () => {
    const h = harness(5);
    h.history.head = 2;
    h.history.fail = true;
    h.follower.catchUp();
    await waitFor(() => h.follower.isStalled, { what: 'stalled on the head read' });
    for (let s = 3; s <= 20; s++) {
      h.follower.live('e1', ev(s));
      expect(h.follower.pending).toBeLessThanOrEqual(5);
    }
    h.history.head = 20;
    h.history.fail = false;
    await waitFor(() => h.follower.position !== undefined && h.follower.pending === 0, {
      what: 'positioned after the retry',
    });
    expect(h.headReads).toBeGreaterThanOrEqual(2);
    expect(h.resyncs).toBe(1);
    // Started at the head (20): what waited is at or below it.
    expect(h.follower.position).toEqual({ epoch: 'e1', lastSeq: 20 });
    h.follower.live('e1', ev(21));
    expect(h.seqs).toEqual([21]);
  });

  it('fills a gap from history, once, and drops the live copies that follow', async () => {
    const h = harness();
    h.follower.start('e1', 0);
    h.history.head = 6;
    h.follower.live('e1', ev(1));
    h.follower.live('e1', ev(4)); // 2 and 3 were lost on the link
    h.follower.live('e1', ev(5));
    h.follower.live('e1', ev(6));
    await waitFor(() => h.seqs.length >= 6);
    expect(h.seqs).toEqual([1, 2, 3, 4, 5, 6]);
    expect(h.reads).toEqual([{ seq: 1, epoch: 'e1' }]);
    expect(h.resyncs).toBe(0);
  });

  it('raises onResync when the gap is no longer in history, and goes on after it', async () => {
    const h = harness();
    h.follower.start('e1', 2);
    h.history.head = 9;
    h.history.first = 6; // 3..5 trimmed
    h.follower.live('e1', ev(9));
    h.follower.live('e1', ev(10));
    await waitFor(() => h.seqs.length >= 1);
    expect(h.resyncs).toBe(1);
    expect(h.seqs).toEqual([10]);
  });

  it('raises onResync on a message of another epoch and follows that epoch', async () => {
    const h = harness();
    h.follower.start('e1', 5);
    h.history.epoch = 'e2';
    h.follower.live('e2', ev(1));
    h.follower.live('e2', ev(2));
    await waitFor(() => h.seqs.length >= 1);
    expect(h.resyncs).toBe(1);
    expect(h.seqs).toEqual([2]);
    expect(h.follower.position).toEqual({ epoch: 'e2', lastSeq: 2 });
  });

  it('hands the next message over at once, and keeps one behind a catch-up in flight until it ends', async () => {
    const h = harness();
    h.follower.start('e1', 0);
    h.follower.live('e1', ev(1));
    // Nothing waited: handed over in the call itself, no read.
    expect(h.seqs).toEqual([1]);
    let open!: () => void;
    h.gate = new Promise((resolve) => (open = resolve));
    h.history.head = 3;
    h.follower.catchUp();
    h.follower.live('e1', ev(4));
    h.follower.live('e1', ev(2));
    expect(h.seqs).toEqual([1]);
    expect(h.follower.pending).toBe(3);
    open();
    await waitFor(() => h.seqs.length >= 4);
    expect(h.seqs).toEqual([1, 2, 3, 4]);
    expect(h.follower.pending).toBe(0);
  });

  it('catches up on demand (after a link cut) without a resync when history has it all', async () => {
    const h = harness();
    h.follower.start('e1', 3);
    h.history.head = 7;
    h.follower.catchUp();
    await waitFor(() => h.seqs.length >= 4);
    expect(h.seqs).toEqual([4, 5, 6, 7]);
    expect(h.resyncs).toBe(0);
  });

  it('stalls on a failed catch-up and retries it, losing nothing and raising no resync', async () => {
    const h = harness();
    h.follower.start('e1', 0);
    h.history.head = 3;
    h.history.fail = true;
    h.follower.live('e1', ev(3));
    await waitFor(() => h.follower.isStalled);
    h.follower.live('e1', ev(4));
    h.history.head = 4;
    h.history.fail = false;
    await waitFor(() => h.seqs.length >= 4);
    expect(h.seqs).toEqual([1, 2, 3, 4]);
    expect(h.resyncs).toBe(0);
    expect(h.reads.length).toBeGreaterThanOrEqual(2);
  });

  it('never queues more than maxPending: past it, one catch-up replaces the queue', async () => {
    const h = harness(5);
    h.follower.start('e1', 0);
    let open!: () => void;
    h.gate = new Promise<void>((resolve) => (open = resolve));
    h.history.head = 50;
    h.follower.live('e1', ev(2)); // a gap: a catch-up starts and waits on the gate
    await waitFor(() => h.reads.length === 1);
    for (let s = 3; s <= 50; s++) {
      h.follower.live('e1', ev(s));
      expect(h.follower.pending).toBeLessThanOrEqual(5);
    }
    h.gate = undefined;
    open();
    await waitFor(() => h.seqs.length >= 50);
    expect(h.seqs).toEqual(Array.from({ length: 50 }, (_, k) => k + 1));
    expect(h.resyncs).toBe(0);
    expect(h.follower.pending).toBe(0);
  });

  it('hands nothing over once closed', async () => {
    const h = harness();
    h.follower.start('e1', 0);
    h.follower.close();
    h.follower.live('e1', ev(1));
    h.follower.catchUp();
    expect(h.follower.pending).toBe(0);
    expect(h.seqs).toEqual([]);
  });

  it('refuses a maxPending that is not a positive integer', () => {
    expect(() => harness(0)).toThrow(/maxPending/);
  });
  it('ignores messages of an epoch it left: one resync, no flapping back', async () => {
    const h = harness();
    h.history.head = 2;
    h.follower.start('e1', 2);
    let open: () => void = () => undefined;
    h.gate = new Promise<void>((resolve) => (open = resolve));
    // A gap: the catch-up waits at the gate while more of e1 queues behind it.
    for (const s of [4, 5, 6]) h.follower.live('e1', ev(s));
    await waitFor(() => h.reads.length === 1, { what: 'the catch-up read' });
    // Redis lost the stream meanwhile: history is a new epoch.
    h.history = { epoch: 'e2', head: 1, first: 1, fail: false };
    h.gate = undefined;
    open();
    await waitFor(() => h.follower.position?.epoch === 'e2' && h.follower.pending === 0, {
      what: 'the queue drained in e2',
    });
    h.follower.live('e2', ev(2));
    await waitFor(() => h.seqs.length >= 1, { what: 'seq 2 of e2' });
    expect(h.seqs).toEqual([2]);
    expect(h.resyncs).toBe(1);
    expect(h.follower.position).toEqual({ epoch: 'e2', lastSeq: 2 });
  });
  it('remembers the last 8 epochs it left: an older one counts as new again', async () => {
    const h = harness();
    h.follower.start('e0', 0);
    for (let k = 1; k <= 9; k++) h.follower.live(`e${k}`, ev(1));
    await waitFor(() => h.resyncs === 9, { what: 'nine resyncs' });
    h.follower.live('e1', ev(2)); // left, remembered: dropped
    h.follower.live('e0', ev(2)); // left first, forgotten past the bound: followed
    await waitFor(() => h.follower.pending === 0, { what: 'the queue drained' });
    expect(h.resyncs).toBe(10);
    expect(h.follower.position).toEqual({ epoch: 'e0', lastSeq: 2 });
  });
});
