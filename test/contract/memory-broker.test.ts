/**
 * MemoryBroker: the broker contract, then what only the memory engine has:
 * its bounds (each driven past its limit), `sweep` on an injected clock, and
 * its options.
 */
import { describe, expect, it } from 'vitest';
import type { StreamEvent } from '../../src/broker/broker.js';
import { MemoryBroker, type MemoryBrokerOptions } from '../../src/broker/memory-broker.js';
import {
  encodeEvent,
  encodeEventFrame,
  type EncodedEvent,
} from '../../src/protocol/event-frame.js';
import { validateEventInput } from '../../src/protocol/event-input.js';
import type { JsonValue } from '../../src/protocol/frames.js';
import { RecordingHandlers } from '../helpers/recording-handlers.js';
import { describeBrokerContract } from './broker-contract.js';

describeBrokerContract('memory', async (options) => ({
  broker: new MemoryBroker(options),
  cleanup: async () => {},
}));

function note(data: JsonValue, id?: string): EncodedEvent {
  const result = validateEventInput(
    { event: 'note', data, ...(id !== undefined ? { id } : {}) },
    256 * 1024,
  );
  if (!result.ok) throw new Error(result.failure.message);
  return encodeEvent(result.value);
}

function frameBytes(events: StreamEvent[]): number {
  return events.reduce((sum, e) => sum + Buffer.byteLength(e.payload, 'utf8'), 0);
}

/** A broker on a clock the test moves by hand. */
function clocked(options: MemoryBrokerOptions = {}): {
  broker: MemoryBroker;
  clock: { t: number };
} {
  const clock = { t: 1_700_000_000_000 };
  return { broker: new MemoryBroker({ ...options, now: () => clock.t }), clock };
}

describe('MemoryBroker options', () => {
  it.each([
    [{ historySize: 0 }, 'option historySize must be a positive integer, got 0'],
    [{ historySize: 1.5 }, 'option historySize must be a positive integer, got 1.5'],
    [{ historyTtlMs: -1 }, 'option historyTtlMs must be a positive integer, got -1'],
    [{ maxStreams: Number.NaN }, 'option maxStreams must be a positive integer, got NaN'],
    [{ maxStreamBytes: 0 }, 'option maxStreamBytes must be a positive integer, got 0'],
    [
      { maxTotalBytes: Number.POSITIVE_INFINITY },
      'option maxTotalBytes must be a positive integer, got Infinity',
    ],
    [{ now: 5 }, 'option now must be a function returning ms since the epoch'],
    [{ nodeId: '' }, 'option nodeId must be a non-empty string'],
  ])('refuses %o with a TypeError', (options, message) => {
    // The options come from JS callers too, so wrong types are part of the test.
    const build = () => new MemoryBroker(options as unknown as MemoryBrokerOptions);
    // A TypeError with exactly this message (an OptionError for the number options).
    expect(build).toThrow(TypeError);
    expect(build).toThrow(expect.objectContaining({ message }));
  });

  it('takes a given node id, or makes a random one', () => {
    expect(new MemoryBroker({ nodeId: 'node-7' }).nodeId).toBe('node-7');
    const a = new MemoryBroker().nodeId;
    expect(a).toMatch(/^n_[A-Za-z0-9_-]{8}$/);
    expect(new MemoryBroker().nodeId).not.toBe(a);
  });

  it('refuses a second start', async () => {
    const broker = new MemoryBroker();
    await broker.start(new RecordingHandlers());
    await expect(broker.start(new RecordingHandlers())).rejects.toThrow(/already started/);
  });
});

describe('MemoryBroker bounds', () => {
  it('drops the least recently used unsubscribed stream past maxStreams; it returns with a new epoch', async () => {
    const broker = new MemoryBroker({ maxStreams: 3 });
    await broker.start(new RecordingHandlers());
    const a = await broker.publish('a', note(1));
    await broker.publish('a', note(2));
    const b = await broker.publish('b', note(1));
    const c = await broker.publish('c', note(1));
    await broker.readHistory('a', { kind: 'acked' }); // a is now the most recently used
    await broker.publish('d', note(1)); // 4th stream: b, the least recently used, goes
    expect(broker.stats()).toMatchObject({ streams: 3, evictedStreams: 1, events: 4 });

    expect((await broker.readHistory('a', { kind: 'acked' })).epoch).toBe(a.epoch);
    // Reading b creates it again (evicting c, now the least recently used).
    const back = await broker.readHistory('b', {
      kind: 'position',
      seq: b.seq,
      epoch: b.epoch,
    });
    expect(back.epoch).not.toBe(b.epoch);
    expect(back).toMatchObject({ headSeq: 0, events: [], from: 1, gap: true });
    const again = await broker.publish('b', note(2));
    expect(again).toMatchObject({ seq: 1, epoch: back.epoch });
    const cBack = await broker.readHistory('c', { kind: 'acked' });
    expect(cBack.epoch).not.toBe(c.epoch);
    expect(broker.stats().streams).toBe(3);
  });

  it('never drops a subscribed stream, and drops it once unsubscribed', async () => {
    const broker = new MemoryBroker({ maxStreams: 2 });
    const handlers = new RecordingHandlers();
    await broker.start(handlers);
    // The stream exists before the subscription: subscribing takes it out of the eviction order.
    const first = await broker.publish('kept', note('oldest of all'));
    await broker.subscribe('kept');
    for (const user of ['x', 'y', 'z', 'w']) await broker.publish(user, note(user));
    expect(broker.stats()).toMatchObject({ streams: 2, evictedStreams: 3 });
    const read = await broker.readHistory('kept', { kind: 'acked' });
    expect(read.epoch).toBe(first.epoch);
    expect(read.events.map((e) => e.seq)).toEqual([1]);

    // Unsubscribed, it joins the eviction order as the most recently used.
    await broker.unsubscribe('kept');
    await broker.publish('v', note('v')); // w goes
    expect((await broker.readHistory('kept', { kind: 'acked' })).epoch).toBe(first.epoch);
    await broker.publish('v2', note('v2')); // v goes (kept was just read)
    await broker.publish('v3', note('v3')); // kept goes
    expect((await broker.readHistory('kept', { kind: 'acked' })).epoch).not.toBe(first.epoch);
  });

  it('fans out to the subscribers of the moment, whichever came first, the stream or the subscription', async () => {
    // A stream keeps a reference to its user's subscribers: it must follow
    // every subscribe and unsubscribe, and a stream made again after an eviction.
    const broker = new MemoryBroker({ maxStreams: 1 });
    const handlers = new RecordingHandlers();
    await broker.start(handlers);
    const seqs = (user: string): number[] =>
      (handlers.events.get(user) ?? []).map((recorded) => recorded.event.seq);
    await broker.subscribe('early'); // before its stream exists
    await broker.publish('early', note(1));
    await broker.publish('late', note(1)); // its stream exists before the subscription
    await broker.subscribe('late');
    await broker.publish('late', note(2));
    expect([seqs('early'), seqs('late')]).toEqual([[1], [2]]);

    await broker.unsubscribe('early');
    await broker.publish('early', note(2)); // no node is subscribed: nobody gets it
    await broker.publish('other', note(1)); // past maxStreams: 'early' is evicted, 'late' is not
    expect(broker.stats()).toMatchObject({ streams: 2, evictedStreams: 1 });
    await broker.subscribe('early');
    const again = await broker.publish('early', note(3)); // a new stream, subscribed from its start
    expect(again.seq).toBe(1);
    expect(seqs('early')).toEqual([1, 1]);
    // Subscribed again, it is out of the eviction order: 'other' goes instead.
    await broker.publish('third', note(1));
    expect((await broker.readHistory('early', { kind: 'acked' })).epoch).toBe(again.epoch);
  });

  it('puts an unsubscribed stream back in the eviction order, where each use moves it to the young end', async () => {
    const broker = new MemoryBroker({ maxStreams: 3 });
    await broker.start(new RecordingHandlers());
    await broker.subscribe('s');
    const { epoch } = await broker.publish('s', note(1));
    await broker.publish('a', note(1));
    await broker.publish('b', note(1));
    await broker.unsubscribe('s'); // the order: a, b, s
    await broker.publish('a', note(2)); // b, s, a
    await broker.readHistory('s', { kind: 'acked' }); // b, a, s
    await broker.publish('c', note(1)); // b goes
    await broker.publish('d', note(1)); // a goes, not s
    expect(broker.stats()).toMatchObject({ streams: 3, evictedStreams: 2 });
    expect((await broker.readHistory('s', { kind: 'acked' })).epoch).toBe(epoch);
  });

  it('lets subscribed streams alone exceed maxStreams (they are bounded by connections)', async () => {
    const broker = new MemoryBroker({ maxStreams: 2 });
    await broker.start(new RecordingHandlers());
    const epochs = new Map<string, string>();
    for (const user of ['s1', 's2', 's3']) {
      await broker.subscribe(user);
      epochs.set(user, (await broker.publish(user, note(user))).epoch);
    }
    expect(broker.stats()).toMatchObject({ streams: 3, evictedStreams: 0 });
    for (const [user, epoch] of epochs) {
      expect((await broker.readHistory(user, { kind: 'acked' })).epoch).toBe(epoch);
    }
  });

  it('trims a stream to maxStreamBytes, counting UTF-8 bytes of the payloads', async () => {
    const maxStreamBytes = 5000;
    const broker = new MemoryBroker({ maxStreamBytes });
    await broker.start(new RecordingHandlers());
    // 500 UTF-16 units but 1000 UTF-8 bytes: a count of units would keep twice as many.
    const payload = 'é'.repeat(500);
    for (let i = 0; i < 10; i++) await broker.publish('bytes', note(payload));
    const read = await broker.readHistory('bytes', { kind: 'acked' });
    const kept = read.events.length;
    expect(kept).toBe(4); // each frame is a little over 1000 bytes
    expect(frameBytes(read.events)).toBeLessThanOrEqual(maxStreamBytes);
    expect(frameBytes(read.events) + frameBytes(read.events.slice(0, 1))).toBeGreaterThan(
      maxStreamBytes,
    );
    expect(read).toMatchObject({ headSeq: 10, from: 7, gap: true });
    expect(broker.stats()).toMatchObject({ events: 4, bytes: frameBytes(read.events) });
  });

  it('publishes an event larger than maxStreamBytes live but keeps none of it', async () => {
    const broker = new MemoryBroker({ maxStreamBytes: 100 });
    const handlers = new RecordingHandlers();
    await broker.start(handlers);
    await broker.subscribe('huge');
    const outcome = await broker.publish('huge', note('x'.repeat(200)));
    expect(outcome.seq).toBe(1);
    expect(handlers.seqsOf('huge')).toEqual([1]);
    const read = await broker.readHistory('huge', { kind: 'acked' });
    expect(read).toMatchObject({ headSeq: 1, events: [], from: 2, gap: true });
    expect(broker.stats()).toMatchObject({ events: 0, bytes: 0 });
  });

  it('keeps the total under maxTotalBytes: LRU unsubscribed streams go first, then the oldest events of the stream published to', async () => {
    const payload = 'p'.repeat(1000);
    const probe = new MemoryBroker();
    await probe.publish('probe', note(payload, 'id-0001'));
    const frame = probe.stats().bytes; // every event below has a frame of exactly this size
    const broker = new MemoryBroker({ maxTotalBytes: 4 * frame + Math.floor(frame / 2) });
    await broker.start(new RecordingHandlers());

    await broker.publish('old1', note(payload, 'id-0001'));
    await broker.publish('old2', note(payload, 'id-0001'));
    await broker.subscribe('live');
    await broker.publish('live', note(payload, 'id-0001'));
    await broker.publish('hot', note(payload, 'id-0001'));
    expect(broker.stats()).toMatchObject({ streams: 4, events: 4, bytes: 4 * frame });

    await broker.publish('hot', note(payload, 'id-0002')); // over: old1 goes
    expect(broker.stats()).toMatchObject({ streams: 3, events: 4, bytes: 4 * frame });
    await broker.publish('hot', note(payload, 'id-0003')); // over: old2 goes
    expect(broker.stats()).toMatchObject({ streams: 2, events: 4, bytes: 4 * frame });
    expect(broker.stats().evictedStreams).toBe(2);

    // Nothing unsubscribed is left but hot itself: its oldest event goes, live is untouched.
    await broker.publish('hot', note(payload, 'id-0004'));
    expect(broker.stats()).toMatchObject({ streams: 2, events: 4, bytes: 4 * frame });
    const hot = await broker.readHistory('hot', { kind: 'acked' });
    expect(hot.events.map((e) => e.seq)).toEqual([2, 3, 4]);
    expect(hot).toMatchObject({ from: 2, gap: true });
    const live = await broker.readHistory('live', { kind: 'acked' });
    expect(live.events.map((e) => e.seq)).toEqual([1]);
  });

  it('keeps reads exact across many trims of a long-lived stream', async () => {
    const broker = new MemoryBroker({ historySize: 50 });
    await broker.start(new RecordingHandlers());
    let epoch = '';
    for (let i = 1; i <= 300; i++) epoch = (await broker.publish('long', note({ i }))).epoch;
    const tail = await broker.readHistory('long', { kind: 'position', seq: 260, epoch });
    expect(tail.events.map((e) => e.seq)).toEqual(Array.from({ length: 40 }, (_, k) => 261 + k));
    expect(
      tail.events.map((e) => (JSON.parse(encodeEventFrame(e)) as { data: { i: number } }).data.i),
    ).toEqual(tail.events.map((e) => e.seq));
    const all = await broker.readHistory('long', { kind: 'position', seq: 0, epoch });
    expect(all).toMatchObject({ headSeq: 300, from: 251, gap: true });
    expect(all.events).toHaveLength(50);
    expect(broker.stats()).toMatchObject({ events: 50, bytes: frameBytes(all.events) });
  });

  it('forgets an idempotency id once its event is trimmed', async () => {
    const broker = new MemoryBroker({ historySize: 3 });
    await broker.start(new RecordingHandlers());
    expect(await broker.publish('u', note('a', 'key-a'))).toMatchObject({ seq: 1 });
    expect(await broker.publish('u', note('again', 'key-a'))).toMatchObject({
      seq: 1,
      duplicate: true,
    });
    for (let i = 0; i < 3; i++) await broker.publish('u', note(i));
    // key-a (seq 1) left history with the 4th publish: it is a new event now.
    expect(await broker.publish('u', note('a', 'key-a'))).toMatchObject({
      seq: 5,
      duplicate: false,
    });
  });

  it('forgets an idempotency id once its event expires', async () => {
    const { broker, clock } = clocked({ historyTtlMs: 1000 });
    await broker.start(new RecordingHandlers());
    await broker.publish('u', note('a', 'key-a'));
    clock.t += 999;
    expect(await broker.publish('u', note('a', 'key-a'))).toMatchObject({ duplicate: true });
    clock.t += 1;
    expect(await broker.publish('u', note('a', 'key-a'))).toMatchObject({
      seq: 2,
      duplicate: false,
    });
  });
});

describe('MemoryBroker expiry and sweep', () => {
  it('expires events lazily on read, oldest first, keeping the epoch and head', async () => {
    const { broker, clock } = clocked({ historyTtlMs: 1000 });
    await broker.start(new RecordingHandlers());
    const first = await broker.publish('u', note(1));
    clock.t += 600;
    await broker.publish('u', note(2));
    clock.t += 400; // seq 1 is 1000 ms old: expired; seq 2 is 400 ms old
    const read = await broker.readHistory('u', { kind: 'position', seq: 0, epoch: first.epoch });
    expect(read.events.map((e) => e.seq)).toEqual([2]);
    expect(read).toMatchObject({ epoch: first.epoch, headSeq: 2, from: 2, gap: true });
    expect(read.events[0]?.ts).toBe(clock.t - 400);
  });

  it('sweeps expired events and empty idle unsubscribed streams, and nothing else', async () => {
    const { broker, clock } = clocked({ historyTtlMs: 1000 });
    await broker.start(new RecordingHandlers());
    const t0 = clock.t;
    const a = await broker.publish('a', note(1)); // expires; a keeps seq 2
    await broker.publish('b', note(1)); // expires; b is then empty and idle: dropped
    await broker.subscribe('s');
    await broker.readHistory('s', { kind: 'acked' }); // empty but subscribed: kept
    clock.t = t0 + 500;
    await broker.publish('a', note(2));
    await broker.readHistory('c', { kind: 'acked' }); // empty, used 500 ms ago: kept
    expect(broker.stats()).toMatchObject({ streams: 4, events: 3 });

    expect(await broker.sweep(t0 + 999)).toBe(0);
    expect(await broker.sweep(t0 + 1000)).toBe(3); // a's seq 1, b's seq 1, stream b
    expect(broker.stats()).toMatchObject({ streams: 3, events: 1, evictedStreams: 1 });

    clock.t = t0 + 1000;
    const readA = await broker.readHistory('a', { kind: 'acked' });
    expect(readA).toMatchObject({ epoch: a.epoch, headSeq: 2, from: 2, gap: true });
    expect((await broker.readHistory('b', { kind: 'acked' })).headSeq).toBe(0);

    // 1500: a's seq 2 expires; c, idle since 500, goes; a and b were used at 1000.
    expect(await broker.sweep(t0 + 1500)).toBe(2); // a's seq 2, stream c
    expect(broker.stats()).toMatchObject({ streams: 3, events: 0 });
  });

  it('sweeps nothing from a subscribed stream but its expired events', async () => {
    const { broker, clock } = clocked({ historyTtlMs: 1000 });
    await broker.start(new RecordingHandlers());
    await broker.subscribe('s');
    const first = await broker.publish('s', note(1));
    expect(await broker.sweep(clock.t + 10_000)).toBe(1);
    expect(broker.stats()).toMatchObject({ streams: 1, events: 0 });
    expect((await broker.readHistory('s', { kind: 'acked' })).epoch).toBe(first.epoch);
  });
});

describe('MemoryBroker acks and lifecycle', () => {
  it('clamps an ack to the head, and creates no stream for an unknown user', async () => {
    const broker = new MemoryBroker();
    await broker.start(new RecordingHandlers());
    await broker.ack('nobody', 5);
    expect(broker.stats().streams).toBe(0);
    for (let i = 0; i < 3; i++) await broker.publish('u', note(i));
    await broker.ack('u', 99);
    expect(await broker.readHistory('u', { kind: 'acked' })).toMatchObject({
      ackedSeq: 3,
      events: [],
      from: 4,
      gap: false,
    });
    const next = await broker.publish('u', note('next'));
    expect((await broker.readHistory('u', { kind: 'acked' })).events.map((e) => e.id)).toEqual([
      next.id,
    ]);
  });

  it('fans out inside publish: onEvent has run when the publish resolves', async () => {
    const broker = new MemoryBroker();
    const handlers = new RecordingHandlers();
    await broker.start(handlers);
    await broker.subscribe('u');
    const pending = broker.publish('u', note(1));
    expect(handlers.seqsOf('u')).toEqual([1]); // before any await: the step was synchronous
    await pending;
  });

  it('drops everything on close', async () => {
    const broker = new MemoryBroker();
    await broker.start(new RecordingHandlers());
    await broker.subscribe('u');
    await broker.publish('u', note(1));
    await broker.close();
    expect(broker.stats()).toMatchObject({ streams: 0, subscribedUsers: 0, events: 0, bytes: 0 });
    expect(broker.health()).toEqual({ healthy: false, reason: 'broker closed' });
  });

  it('hands a control message to its own handler (one node: a local call), and none once closed', async () => {
    const broker = new MemoryBroker();
    const handlers = new RecordingHandlers();
    await broker.start(handlers);
    await broker.control({ kind: 'disconnect', userId: 'u', code: 4401 });
    expect(handlers.controls).toEqual([{ kind: 'disconnect', userId: 'u', code: 4401 }]);
    await broker.close();
    await expect(broker.control({ kind: 'disconnect', userId: 'u', code: 4401 })).rejects.toThrow();
    expect(handlers.controls).toHaveLength(1);
  });
});

describe('MemoryBroker runs', () => {
  function runEvent(event: string, data: JsonValue, runId: string): EncodedEvent {
    const result = validateEventInput({ event, data, runId }, 256 * 1024);
    if (!result.ok) throw new Error(result.failure.message);
    return encodeEvent(result.value);
  }

  it.each([
    [{ runSnapshotMaxBytes: 1000 }, 'option runSnapshotMaxBytes must be at least 16384'],
    [{ runTtlMs: 0 }, 'option runTtlMs must be a positive integer, got 0'],
    [{ maxRunsPerUser: -1 }, 'option maxRunsPerUser must be a positive integer, got -1'],
    [
      { runSnapshotMaxBytes: 32_768, maxRunBytes: 20_000 },
      'option maxRunBytes must be at least runSnapshotMaxBytes',
    ],
  ])('refuses %o', (options, message) => {
    expect(() => new MemoryBroker(options)).toThrow(TypeError);
    expect(() => new MemoryBroker(options)).toThrow(expect.objectContaining({ message }));
  });

  it('keeps all snapshots under maxRunBytes: the least recently updated runs go', async () => {
    const maxBytes = 16 * 1024;
    const broker = new MemoryBroker({ runSnapshotMaxBytes: maxBytes, maxRunBytes: 2 * maxBytes });
    await broker.start(new RecordingHandlers());
    const big = 'x'.repeat(12_000);
    for (const runId of ['a', 'b', 'c']) {
      await broker.publish('u', runEvent('agent_started', { agent: 'a' }, runId));
      await broker.publish('u', runEvent('agent_thinking', { text: big }, runId));
    }
    // Three runs of ~12 KB each do not fit in 32 KiB: a, the stalest, went.
    expect(await broker.readRun('u', 'a')).toBeNull();
    expect((await broker.listRuns('u', 10)).map((r) => r.runId)).toEqual(['c', 'b']);
    expect(broker.stats().runs).toBe(2);
    expect(broker.stats().runBytes).toBeLessThanOrEqual(2 * maxBytes);
  });

  it('sweeps runs past runTtlMs on the injected clock, apart from the history', async () => {
    const { broker, clock } = clocked({ runTtlMs: 7_200_000, historyTtlMs: 3_600_000 });
    await broker.start(new RecordingHandlers());
    await broker.publish('u', runEvent('agent_started', { agent: 'a' }, 'r1'));
    await broker.publish('u', runEvent('agent_completed', { status: 'succeeded' }, 'r1'));
    clock.t += 2 * 3_600_000 - 1; // the history expired 1 h ago; the run has 1 ms left
    expect((await broker.readHistory('u', { kind: 'acked' })).events).toEqual([]);
    expect((await broker.readRun('u', 'r1'))?.status).toBe('succeeded');
    expect(await broker.sweep(clock.t)).toBe(0);
    expect(await broker.sweep(clock.t + 1)).toBe(1);
    expect(await broker.readRun('u', 'r1')).toBeNull();
    expect(broker.stats()).toMatchObject({ runs: 0, runBytes: 0 });
  });
});
