/**
 * The one suite every Broker must pass (the contract in `src/broker/broker.ts`).
 * Engine-agnostic: it waits on conditions with deadlines, never on the clock,
 * because an engine may deliver asynchronously (Redis pub/sub), and it uses a
 * fresh user id per test, because a shared engine keeps its state between
 * factory calls.
 *
 * Usage (one file per engine):
 *
 * ```ts
 * describeBrokerContract('memory', async (options) => {
 *   const broker = new MemoryBroker(options);
 *   return { broker, cleanup: async () => {} };
 * });
 * ```
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BrokerUnavailableError,
  type Broker,
  type ConnectionRecord,
  type DeliveryReport,
  type PublishOutcome,
  type StreamEvent,
} from '../../src/broker/broker.js';
import type { JsonValue } from '../../src/protocol/frames.js';
import {
  encodeEvent,
  encodeEventFrame,
  type EncodedEvent,
} from '../../src/protocol/event-frame.js';
import { validateEventInput, type EventInput } from '../../src/protocol/event-input.js';
import { RecordingHandlers } from '../helpers/recording-handlers.js';
import { waitFor } from '../helpers/wait-for.js';
import { describeRunStoreContract } from './run-store-contract.js';

export interface BrokerFactoryOptions {
  historySize: number;
  historyTtlMs: number;
  /** Run store bounds (run-store-contract.ts); the engine's defaults when absent. */
  runTtlMs?: number;
  runSnapshotMaxBytes?: number;
  maxRunsPerUser?: number;
}

/**
 * Makes one broker, not yet started (the suite calls `start`). `cleanup`
 * releases what the factory made besides the broker; the suite closes the
 * broker first. With `sharedAcrossInstances`, brokers of one factory are nodes
 * of one engine: they share streams, acks and broadcasts.
 */
export type BrokerFactory = (
  options: BrokerFactoryOptions,
) => Promise<{ broker: Broker; cleanup: () => Promise<void> }>;

export interface BrokerContractCapabilities {
  /** Two brokers of one factory share state (multi-node engines): runs the cross-node cases. */
  sharedAcrossInstances: boolean;
}

const DEFAULTS: BrokerFactoryOptions = { historySize: 1000, historyTtlMs: 3_600_000 };

/** Unique per process and per call, so tests on a shared engine never meet. */
const RUN = randomBytes(4).toString('hex');
let userCounter = 0;
function newUser(label: string): string {
  return `${label}-${RUN}-${++userCounter}`;
}

function validEvent(input: EventInput): EncodedEvent {
  const result = validateEventInput(input, 256 * 1024);
  if (!result.ok) throw new Error(`test event is invalid: ${result.failure.message}`);
  return encodeEvent(result.value);
}

function note(data: JsonValue, id?: string): EncodedEvent {
  return validEvent({ event: 'note', data, ...(id !== undefined ? { id } : {}) });
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

function dataOf(event: StreamEvent): unknown {
  return (JSON.parse(encodeEventFrame(event)) as { data: unknown }).data;
}

async function publishMany(broker: Broker, userId: string, count: number): Promise<void> {
  for (let i = 1; i <= count; i++) await broker.publish(userId, note({ i }));
}

export function describeBrokerContract(
  name: string,
  factory: BrokerFactory,
  capabilities: BrokerContractCapabilities = { sharedAcrossInstances: false },
): void {
  describe(`broker contract: ${name}`, () => {
    const opened: { broker: Broker; cleanup: () => Promise<void> }[] = [];

    afterEach(async () => {
      for (const made of opened.splice(0).reverse()) {
        await made.broker.close();
        await made.cleanup();
      }
    });

    async function open(
      options: Partial<BrokerFactoryOptions> = {},
    ): Promise<{ broker: Broker; handlers: RecordingHandlers }> {
      const made = await factory({ ...DEFAULTS, ...options });
      opened.push(made);
      const handlers = new RecordingHandlers();
      await made.broker.start(handlers);
      return { broker: made.broker, handlers };
    }

    describeRunStoreContract(open);

    async function epochOf(broker: Broker, userId: string): Promise<string> {
      return (await broker.readHistory(userId, { kind: 'acked' })).epoch;
    }

    describe('sequence (contract 1)', () => {
      it('assigns 1..500 with no gap or reuse to 500 concurrent publishes to one user', async () => {
        const { broker, handlers } = await open();
        const user = newUser('burst');
        await broker.subscribe(user);
        const outcomes = await Promise.all(
          range(1, 500).map((i) => broker.publish(user, note({ i }))),
        );
        expect(outcomes.map((o) => o.seq).sort((a, b) => a - b)).toEqual(range(1, 500));
        expect(new Set(outcomes.map((o) => o.epoch)).size).toBe(1);

        await waitFor(() => handlers.seqsOf(user).length >= 500, { what: '500 live events' });
        expect(handlers.seqsOf(user)).toEqual(range(1, 500));
        // The seq an outcome reports is the seq of the event carrying its data.
        const seqOfIndex = new Map(outcomes.map((o, k) => [k + 1, o.seq]));
        for (const { event } of handlers.of(user)) {
          const { i } = dataOf(event) as { i: number };
          expect(event.seq).toBe(seqOfIndex.get(i));
        }
        expect(handlers.resyncs).toEqual([]);
      });

      it('keeps each of 50 users gapless when their publishes interleave', async () => {
        const { broker, handlers } = await open();
        const users = range(1, 50).map((u) => newUser(`many${u}`));
        for (const user of users) await broker.subscribe(user);
        const jobs: Promise<PublishOutcome>[] = [];
        const keys: { user: string; round: number }[] = [];
        for (let round = 1; round <= 10; round++) {
          for (const user of users) {
            keys.push({ user, round });
            jobs.push(broker.publish(user, note({ round })));
          }
        }
        const outcomes = await Promise.all(jobs);
        await waitFor(() => users.every((u) => handlers.seqsOf(u).length >= 10), {
          what: '10 live events for each of 50 users',
        });
        for (const user of users) {
          expect(handlers.seqsOf(user)).toEqual(range(1, 10));
          const mine = outcomes.filter((_, k) => keys[k]?.user === user);
          expect(mine.map((o) => o.seq).sort((a, b) => a - b)).toEqual(range(1, 10));
          for (const { event } of handlers.of(user)) {
            const { round } = dataOf(event) as { round: number };
            const k = keys.findIndex((key) => key.user === user && key.round === round);
            expect(outcomes[k]?.seq).toBe(event.seq);
          }
        }
        expect(handlers.resyncs).toEqual([]);
      });

      it('reports one epoch per stream, stable across reads and publishes', async () => {
        const { broker } = await open();
        const user = newUser('epoch');
        const first = await broker.readHistory(user, { kind: 'acked' });
        expect(typeof first.epoch).toBe('string');
        expect(first.epoch.length).toBeGreaterThan(0);
        const outcome = await broker.publish(user, note('x'));
        expect(outcome.epoch).toBe(first.epoch);
        const again = await broker.readHistory(user, {
          kind: 'position',
          seq: 0,
          epoch: first.epoch,
        });
        expect(again.epoch).toBe(first.epoch);
        // Streams of different users are distinct streams with their own seqs.
        const other = await broker.publish(newUser('epoch-other'), note('y'));
        expect(other.seq).toBe(1);
      });
    });

    describe('fan-out (contract 2)', () => {
      it('hands each event of a subscribed user to onEvent once, as stored', async () => {
        const { broker, handlers } = await open();
        const user = newUser('fan');
        await broker.subscribe(user);
        const outcome = await broker.publish(user, note({ hello: 'world' }));
        await waitFor(() => handlers.of(user).length >= 1, { what: 'one live event' });
        const [live] = handlers.of(user);
        expect(live?.epoch).toBe(outcome.epoch);
        const read = await broker.readHistory(user, {
          kind: 'position',
          seq: 0,
          epoch: outcome.epoch,
        });
        expect(read.events).toHaveLength(1);
        expect(live?.event).toEqual(read.events[0]);
        expect(live?.event.id).toBe(outcome.id);
      });

      it('fans out only to subscribed users', async () => {
        const { broker, handlers } = await open();
        const watched = newUser('watched');
        const quiet = newUser('quiet');
        await broker.subscribe(watched);
        await broker.publish(quiet, note('unseen'));
        await broker.publish(watched, note('seen'));
        // Per-user order: had seq 1 of `quiet` been fanned out, it would arrive before seq 2.
        await broker.subscribe(quiet);
        await broker.publish(quiet, note('seen too'));
        await waitFor(() => handlers.seqsOf(quiet).includes(2), { what: 'seq 2 of quiet' });
        await waitFor(() => handlers.seqsOf(watched).length >= 1, { what: 'seq 1 of watched' });
        expect(handlers.seqsOf(quiet)).toEqual([2]);
        expect(handlers.seqsOf(watched)).toEqual([1]);
      });

      it('stops fan-out after unsubscribe', async () => {
        const { broker, handlers } = await open();
        const user = newUser('unsub');
        await broker.subscribe(user);
        await broker.publish(user, note(1));
        await waitFor(() => handlers.seqsOf(user).length >= 1, { what: 'seq 1' });
        await broker.unsubscribe(user);
        await broker.publish(user, note(2));
        await broker.subscribe(user);
        await broker.publish(user, note(3));
        await waitFor(() => handlers.seqsOf(user).includes(3), { what: 'seq 3' });
        expect(handlers.seqsOf(user)).toEqual([1, 3]);
      });

      it('does not double delivery when a user is subscribed twice', async () => {
        const { broker, handlers } = await open();
        const user = newUser('twice');
        await broker.subscribe(user);
        await broker.subscribe(user);
        await broker.publish(user, note(1));
        await broker.publish(user, note(2));
        await waitFor(() => handlers.seqsOf(user).includes(2), { what: 'seq 2' });
        expect(handlers.seqsOf(user)).toEqual([1, 2]);
      });
    });

    describe('history reads (contract 3)', () => {
      it('reads a fresh stream as empty: headSeq 0, from 1, no gap', async () => {
        const { broker } = await open();
        const read = await broker.readHistory(newUser('fresh'), { kind: 'acked' });
        expect(read).toMatchObject({ headSeq: 0, ackedSeq: 0, events: [], from: 1, gap: false });
      });

      it('reads the events after a position inside history, with no gap', async () => {
        const { broker } = await open();
        const user = newUser('inside');
        await publishMany(broker, user, 5);
        const epoch = await epochOf(broker, user);
        const read = await broker.readHistory(user, { kind: 'position', seq: 2, epoch });
        expect(read.events.map((e) => e.seq)).toEqual([3, 4, 5]);
        expect(read.events.map(dataOf)).toEqual([{ i: 3 }, { i: 4 }, { i: 5 }]);
        expect(read).toMatchObject({ epoch, headSeq: 5, from: 3, gap: false });
      });

      it('reads every event from position 0 when nothing was trimmed', async () => {
        const { broker } = await open();
        const user = newUser('zero');
        await publishMany(broker, user, 3);
        const epoch = await epochOf(broker, user);
        const read = await broker.readHistory(user, { kind: 'position', seq: 0, epoch });
        expect(read.events.map((e) => e.seq)).toEqual([1, 2, 3]);
        expect(read).toMatchObject({ headSeq: 3, from: 1, gap: false });
      });

      it('reads nothing at the head', async () => {
        const { broker } = await open();
        const user = newUser('head');
        await publishMany(broker, user, 5);
        const epoch = await epochOf(broker, user);
        const read = await broker.readHistory(user, { kind: 'position', seq: 5, epoch });
        expect(read).toMatchObject({ epoch, headSeq: 5, events: [], from: 6, gap: false });
      });

      it('trims history to historySize: a read from 0 reports the gap and the first kept seq', async () => {
        const historySize = 10;
        const { broker } = await open({ historySize });
        const user = newUser('trim');
        await publishMany(broker, user, historySize + 5);
        const epoch = await epochOf(broker, user);
        const read = await broker.readHistory(user, { kind: 'position', seq: 0, epoch });
        expect(read.events.map((e) => e.seq)).toEqual(range(6, 15));
        expect(read).toMatchObject({ epoch, headSeq: 15, from: 6, gap: true });
      });

      it('reports a gap for a cursor before the first kept seq, and none just at it', async () => {
        const { broker } = await open({ historySize: 10 });
        const user = newUser('before');
        await publishMany(broker, user, 15);
        const epoch = await epochOf(broker, user);
        const before = await broker.readHistory(user, { kind: 'position', seq: 4, epoch });
        expect(before.events.map((e) => e.seq)).toEqual(range(6, 15));
        expect(before).toMatchObject({ from: 6, gap: true });
        // After 5 the next event is 6, the first kept one: nothing is missing.
        const boundary = await broker.readHistory(user, { kind: 'position', seq: 5, epoch });
        expect(boundary.events.map((e) => e.seq)).toEqual(range(6, 15));
        expect(boundary).toMatchObject({ from: 6, gap: false });
      });

      it('replays the whole history with a gap for a cursor of another epoch', async () => {
        const { broker } = await open();
        const user = newUser('other-epoch');
        await publishMany(broker, user, 4);
        const epoch = await epochOf(broker, user);
        const read = await broker.readHistory(user, {
          kind: 'position',
          seq: 2,
          epoch: `${epoch}-not`,
        });
        expect(read.events.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
        expect(read).toMatchObject({ epoch, headSeq: 4, from: 1, gap: true });
      });

      it('reports a gap and from = headSeq + 1 for another epoch on an empty stream', async () => {
        const { broker } = await open();
        const read = await broker.readHistory(newUser('other-empty'), {
          kind: 'position',
          seq: 7,
          epoch: 'e_from_elsewhere',
        });
        expect(read).toMatchObject({ headSeq: 0, events: [], from: 1, gap: true });
        expect(read.epoch).not.toBe('e_from_elsewhere');
      });

      it('replays the whole history with a gap for a cursor ahead of the head', async () => {
        const { broker } = await open();
        const user = newUser('ahead');
        await publishMany(broker, user, 3);
        const epoch = await epochOf(broker, user);
        const read = await broker.readHistory(user, { kind: 'position', seq: 99, epoch });
        expect(read.events.map((e) => e.seq)).toEqual([1, 2, 3]);
        expect(read).toMatchObject({ headSeq: 3, from: 1, gap: true });
      });

      it('reads after the acked cursor for { kind: acked }', async () => {
        const { broker } = await open();
        const user = newUser('acked');
        await publishMany(broker, user, 5);
        const all = await broker.readHistory(user, { kind: 'acked' });
        expect(all.events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
        expect(all).toMatchObject({ ackedSeq: 0, from: 1, gap: false });
        await broker.ack(user, 3);
        const rest = await broker.readHistory(user, { kind: 'acked' });
        expect(rest.events.map((e) => e.seq)).toEqual([4, 5]);
        expect(rest).toMatchObject({ headSeq: 5, ackedSeq: 3, from: 4, gap: false });
        // Every read reports the acked cursor, whatever its own cursor.
        const positioned = await broker.readHistory(user, {
          kind: 'position',
          seq: 5,
          epoch: rest.epoch,
        });
        expect(positioned.ackedSeq).toBe(3);
      });

      it('reports a gap for { kind: acked } when history was trimmed past the acked cursor', async () => {
        const { broker } = await open({ historySize: 10 });
        const user = newUser('acked-trim');
        await publishMany(broker, user, 15);
        await broker.ack(user, 2);
        const read = await broker.readHistory(user, { kind: 'acked' });
        expect(read.events.map((e) => e.seq)).toEqual(range(6, 15));
        expect(read).toMatchObject({ headSeq: 15, ackedSeq: 2, from: 6, gap: true });
      });

      it('expires events after historyTtlMs', async () => {
        const historyTtlMs = 1000;
        const { broker } = await open({ historyTtlMs });
        const user = newUser('ttl');
        await publishMany(broker, user, 3);
        const fresh = await broker.readHistory(user, { kind: 'acked' });
        expect(fresh.events.map((e) => e.seq)).toEqual([1, 2, 3]);

        const cursor = { kind: 'position', seq: 0, epoch: fresh.epoch } as const;
        const expired = await waitFor(
          async () => {
            const read = await broker.readHistory(user, cursor);
            return read.events.length === 0 ? read : undefined;
          },
          { timeoutMs: historyTtlMs + 5000, what: 'history to expire' },
        );
        expect(expired.gap).toBe(true);
        // An engine may keep the stream (same epoch, head kept) or drop it with
        // its history (new epoch): either way the old cursor sees the gap.
        if (expired.epoch === fresh.epoch) {
          expect(expired).toMatchObject({ headSeq: 3, from: 4 });
        } else {
          expect(expired).toMatchObject({ headSeq: 0, from: 1 });
        }
        const next = await broker.publish(user, note('after expiry'));
        if (next.epoch === expired.epoch) expect(next.seq).toBe(expired.headSeq + 1);
        else expect(next.seq).toBe(1);
      });
    });

    describe('idempotent publish (contract 4)', () => {
      it('returns the first seq with duplicate: true for a repeated id, and fans out once', async () => {
        const { broker, handlers } = await open();
        const user = newUser('idem');
        await broker.subscribe(user);
        const first = await broker.publish(user, note('once', 'order-42'));
        const again = await broker.publish(user, note('twice', 'order-42'));
        expect(first).toMatchObject({ seq: 1, id: 'order-42', duplicate: false });
        expect(again).toEqual({ ...first, duplicate: true });
        const next = await broker.publish(user, note('next'));
        expect(next.seq).toBe(2);
        await waitFor(() => handlers.seqsOf(user).includes(2), { what: 'seq 2' });
        expect(handlers.seqsOf(user)).toEqual([1, 2]);
        expect(dataOf(handlers.of(user)[0]!.event)).toBe('once');
        const read = await broker.readHistory(user, { kind: 'acked' });
        expect(read.events.map((e) => e.id)).toEqual(['order-42', next.id]);
      });

      it('keeps ids per user: the same id for two users is two events', async () => {
        const { broker } = await open();
        const a = await broker.publish(newUser('idem-a'), note('a', 'shared-id'));
        const b = await broker.publish(newUser('idem-b'), note('b', 'shared-id'));
        expect(a).toMatchObject({ seq: 1, duplicate: false });
        expect(b).toMatchObject({ seq: 1, duplicate: false });
      });

      it('generates distinct ev_ ids when none is given', async () => {
        const { broker } = await open();
        const user = newUser('gen-id');
        const outcomes = await Promise.all(range(1, 20).map(() => broker.publish(user, note(0))));
        const ids = outcomes.map((o) => o.id);
        for (const id of ids) expect(id).toMatch(/^ev_[A-Za-z0-9_-]{8,}$/);
        expect(new Set(ids).size).toBe(20);
        expect(outcomes.every((o) => !o.duplicate)).toBe(true);
      });
    });

    describe('ack (contract 5)', () => {
      it('only moves the acked cursor forward', async () => {
        const { broker } = await open();
        const user = newUser('ack');
        await publishMany(broker, user, 6);
        await broker.ack(user, 5);
        await broker.ack(user, 3);
        const read = await broker.readHistory(user, { kind: 'acked' });
        expect(read).toMatchObject({ ackedSeq: 5, headSeq: 6, from: 6, gap: false });
        expect(read.events.map((e) => e.seq)).toEqual([6]);
      });

      it('an ack of another epoch moves nothing', async () => {
        const { broker } = await open();
        const user = newUser('ack-epoch');
        await publishMany(broker, user, 6);
        const epoch = await epochOf(broker, user);
        // A late ack from a connection of an older stream.
        await broker.ack(user, 4, 'e_0000000000000000');
        expect((await broker.readHistory(user, { kind: 'acked' })).ackedSeq).toBe(0);
        await broker.ack(user, 4, epoch);
        await broker.ack(user, 6, 'e_0000000000000000');
        const read = await broker.readHistory(user, { kind: 'acked' });
        expect(read).toMatchObject({ epoch, ackedSeq: 4, headSeq: 6, from: 5, gap: false });
      });
    });

    describe('broadcast and delivery reports', () => {
      it('hands a broadcast frame to onBroadcast unchanged', async () => {
        const { broker, handlers } = await open();
        const frame = JSON.stringify({
          type: 'broadcast',
          id: 'bc_1',
          event: 'maintenance',
          ts: 1,
          data: { text: 'back in 5 min ✨' },
        });
        await broker.broadcast(frame);
        await waitFor(() => handlers.broadcasts.length >= 1, { what: 'the broadcast' });
        expect(handlers.broadcasts).toEqual([frame]);
      });

      it('hands a delivery report only to the node it names', async () => {
        const { broker, handlers } = await open();
        const user = newUser('report');
        const foreign: DeliveryReport = {
          userId: user,
          id: 'ev_report',
          seq: 1,
          epoch: 'e_x',
          awaitedBy: `${broker.nodeId}-elsewhere`,
          kind: 'written',
          connections: 2,
        };
        const mine: DeliveryReport = { ...foreign, awaitedBy: broker.nodeId, kind: 'acked' };
        await broker.reportDelivery(foreign);
        await broker.reportDelivery(mine);
        await waitFor(() => handlers.deliveries.length >= 1, { what: 'the delivery report' });
        expect(handlers.deliveries).toEqual([mine]);
      });

      it('carries awaitedBy on the stored and the live event', async () => {
        const { broker, handlers } = await open();
        const user = newUser('awaited');
        await broker.subscribe(user);
        await broker.publish(user, note('w'), { awaitedBy: broker.nodeId });
        await broker.publish(user, note('plain'));
        await waitFor(() => handlers.seqsOf(user).length >= 2, { what: 'two live events' });
        expect(handlers.of(user).map((r) => r.event.awaitedBy)).toEqual([broker.nodeId, undefined]);
        const read = await broker.readHistory(user, { kind: 'acked' });
        expect(read.events.map((e) => e.awaitedBy)).toEqual([broker.nodeId, undefined]);
      });
    });

    describe('frames', () => {
      it('carries the payload unchanged: its frame is the event as JSON, data exact to the code unit', async () => {
        const { broker, handlers } = await open();
        const user = newUser('frame');
        await broker.subscribe(user);
        const data = {
          ascii: 'plain text',
          accents: 'héllo wörld ñ ç ß',
          cjk: '你好，世界',
          emoji: '👩‍👩‍👧‍👦 🚀 ✨ 🇫🇷',
          rtl: 'مرحبا بالعالم · שלום',
          astral: '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𠜎 𝄞',
          control: '\u0000\u0001\u001f\t\n\r\b\f\u007f\u0085\u2028\u2029',
          loneSurrogates: '\ud800x\udfff',
          quotes: 'she said "hi" \\ </script> \'',
          nested: {
            list: [1, 2.5, -3e-7, true, false, null, { deep: { deeper: ['x', { z: [] }] } }],
            empty: {},
            none: [],
          },
          big: Number.MAX_SAFE_INTEGER,
        };
        const before = Date.now();
        const outcome = await broker.publish(
          user,
          validEvent({
            event: 'custom.event:v1',
            data,
            runId: 'run-1',
            threadId: 'thread-1',
            critical: true,
          }),
          // A run's first event must be agent_started: this one is about the frame only.
          { runGrammar: 'off' },
        );
        const after = Date.now();
        await waitFor(() => handlers.of(user).length >= 1, { what: 'the live event' });
        const live = handlers.of(user)[0]!.event;
        expect(live).toMatchObject({
          seq: outcome.seq,
          id: outcome.id,
          event: 'custom.event:v1',
          critical: true,
        });
        expect(live.ts).toBeGreaterThanOrEqual(before);
        expect(live.ts).toBeLessThanOrEqual(after);
        expect(JSON.parse(encodeEventFrame(live))).toEqual({
          type: 'event',
          seq: outcome.seq,
          id: outcome.id,
          event: 'custom.event:v1',
          runId: 'run-1',
          threadId: 'thread-1',
          ts: live.ts,
          critical: true,
          data,
        });
        const read = await broker.readHistory(user, { kind: 'acked' });
        expect(read.events[0]?.payload).toBe(live.payload);
      });

      it('leaves runId and threadId out of the frame when the event has none', async () => {
        const { broker } = await open();
        const user = newUser('frame-bare');
        await broker.publish(user, validEvent({ event: 'ping.me' }));
        const read = await broker.readHistory(user, { kind: 'acked' });
        const frame = JSON.parse(encodeEventFrame(read.events[0]!)) as Record<string, unknown>;
        expect(Object.keys(frame).sort()).toEqual(
          ['critical', 'data', 'event', 'id', 'seq', 'ts', 'type'].sort(),
        );
        expect(frame).toMatchObject({ type: 'event', seq: 1, critical: false, data: null });
      });
    });

    describe('presence, and connections in the publish outcome', () => {
      function record(broker: Broker, connectionId: string): ConnectionRecord {
        return {
          node: broker.nodeId,
          connectionId,
          snapshot: `{"connectionId":"${connectionId}"}`,
        };
      }

      it("counts the user's recorded connections in the publish step, and none for a duplicate", async () => {
        const { broker } = await open();
        const user = newUser('counted');
        expect((await broker.publish(user, note('nobody'))).connections).toBe(0);
        await broker.putConnections(user, [record(broker, 'c1'), record(broker, 'c2')], 30_000);
        const outcome = await broker.publish(user, note('two', 'counted-1'));
        expect(outcome).toMatchObject({ duplicate: false, connections: 2 });
        const again = await broker.publish(user, note('two', 'counted-1'));
        expect(again).toMatchObject({ duplicate: true, connections: 0 });
        // Another user's records do not count.
        expect((await broker.publish(newUser('other'), note('x'))).connections).toBe(0);
        await broker.putConnections(user, [record(broker, 'c2')], 30_000);
        expect((await broker.publish(user, note('one'))).connections).toBe(1);
        await broker.putConnections(user, [], 30_000);
        expect((await broker.publish(user, note('none'))).connections).toBe(0);
      });

      it("lists a node's records as last written, and its load", async () => {
        const { broker } = await open();
        const user = newUser('listed');
        await broker.putConnections(user, [record(broker, 'c1'), record(broker, 'c2')], 30_000);
        await broker.putConnections(user, [record(broker, 'c2'), record(broker, 'c3')], 30_000);
        const listed = await broker.listConnections(user);
        expect(listed.map((r) => r.connectionId).sort()).toEqual(['c2', 'c3']);
        expect(listed[0]).toMatchObject({ node: broker.nodeId });
        await broker.putNodeLoad(7, 5_000);
        expect((await broker.nodeLoads()).get(broker.nodeId)).toBe(7);
      });

      it('refuses a ttl that is not a positive integer', async () => {
        const { broker } = await open();
        await expect(broker.putConnections(newUser('ttl'), [], 0)).rejects.toThrow(/ttlMs/);
        await expect(broker.putNodeLoad(1, 1.5)).rejects.toThrow(/ttlMs/);
      });
    });

    describe('lifecycle (contract 6)', () => {
      it('is healthy once started, and refuses work with BrokerUnavailableError once closed', async () => {
        const { broker } = await open();
        expect(broker.health().healthy).toBe(true);
        expect(typeof broker.nodeId).toBe('string');
        expect(broker.nodeId.length).toBeGreaterThan(0);
        const user = newUser('closed');
        await broker.publish(user, note('before'));
        await broker.close();
        await broker.close();
        await expect(broker.publish(user, note('after'))).rejects.toBeInstanceOf(
          BrokerUnavailableError,
        );
        await expect(broker.readHistory(user, { kind: 'acked' })).rejects.toBeInstanceOf(
          BrokerUnavailableError,
        );
        expect(broker.health().healthy).toBe(false);
      });
    });

    describe.runIf(capabilities.sharedAcrossInstances)('across nodes', () => {
      it('gives each node its own id', async () => {
        const a = await open();
        const b = await open();
        expect(a.broker.nodeId).not.toBe(b.broker.nodeId);
      });

      it('fans a publish on one node out to the node subscribed to the user', async () => {
        const a = await open();
        const b = await open();
        const user = newUser('cross');
        await b.broker.subscribe(user);
        const outcome = await a.broker.publish(user, note('from a'));
        await waitFor(() => b.handlers.seqsOf(user).length >= 1, { what: 'the event on b' });
        expect(b.handlers.of(user)[0]).toMatchObject({ epoch: outcome.epoch });
        expect(b.handlers.of(user)[0]?.event).toMatchObject({ seq: 1, id: outcome.id });
        // a is not subscribed: a later event to a user it holds arrives, this one never did.
        const marker = newUser('cross-marker');
        await a.broker.subscribe(marker);
        await b.broker.publish(marker, note('marker'));
        await waitFor(() => a.handlers.seqsOf(marker).length >= 1, { what: 'the marker on a' });
        expect(a.handlers.seqsOf(user)).toEqual([]);
        const read = await b.broker.readHistory(user, { kind: 'acked' });
        expect(read).toMatchObject({ epoch: outcome.epoch, headSeq: 1 });
      });

      it('shares one gapless sequence between nodes publishing at once', async () => {
        const a = await open();
        const b = await open();
        const user = newUser('cross-seq');
        await a.broker.subscribe(user);
        await b.broker.subscribe(user);
        const outcomes = await Promise.all(
          range(1, 200).map((i) => (i % 2 ? a.broker : b.broker).publish(user, note({ i }))),
        );
        expect(outcomes.map((o) => o.seq).sort((x, y) => x - y)).toEqual(range(1, 200));
        expect(new Set(outcomes.map((o) => o.epoch)).size).toBe(1);
        await waitFor(
          () => a.handlers.seqsOf(user).length >= 200 && b.handlers.seqsOf(user).length >= 200,
          { what: '200 events on both nodes' },
        );
        expect(a.handlers.seqsOf(user)).toEqual(range(1, 200));
        expect(b.handlers.seqsOf(user)).toEqual(range(1, 200));
      });

      it('shares acks and idempotency ids between nodes', async () => {
        const a = await open();
        const b = await open();
        const user = newUser('cross-ack');
        const first = await a.broker.publish(user, note('x', 'dedupe-1'));
        const again = await b.broker.publish(user, note('x', 'dedupe-1'));
        expect(again).toEqual({ ...first, duplicate: true });
        await publishMany(a.broker, user, 3);
        await a.broker.ack(user, 3);
        await b.broker.ack(user, 2);
        const read = await b.broker.readHistory(user, { kind: 'acked' });
        expect(read).toMatchObject({ ackedSeq: 3, headSeq: 4, from: 4, gap: false });
      });

      it('hands a broadcast to every node', async () => {
        const a = await open();
        const b = await open();
        await a.broker.broadcast('{"type":"broadcast","id":"bc_x","event":"e","ts":1,"data":null}');
        await waitFor(
          () => a.handlers.broadcasts.length >= 1 && b.handlers.broadcasts.length >= 1,
          {
            what: 'the broadcast on both nodes',
          },
        );
        expect(a.handlers.broadcasts).toHaveLength(1);
        expect(b.handlers.broadcasts).toHaveLength(1);
      });

      it("counts every node's recorded connections of the user in a publish on any node", async () => {
        const a = await open();
        const b = await open();
        const user = newUser('cross-count');
        const rec = (node: string, connectionId: string): ConnectionRecord => ({
          node,
          connectionId,
          snapshot: '{}',
        });
        await a.broker.putConnections(user, [rec(a.broker.nodeId, 'a1')], 30_000);
        await b.broker.putConnections(
          user,
          [rec(b.broker.nodeId, 'b1'), rec(b.broker.nodeId, 'b2')],
          30_000,
        );
        expect((await a.broker.publish(user, note('x'))).connections).toBe(3);
        expect((await b.broker.publish(user, note('y'))).connections).toBe(3);
        expect((await b.broker.listConnections(user)).map((r) => r.connectionId).sort()).toEqual([
          'a1',
          'b1',
          'b2',
        ]);
        // A node rewriting its records leaves the other node's alone.
        await a.broker.putConnections(user, [], 30_000);
        expect((await b.broker.publish(user, note('z'))).connections).toBe(2);
        await a.broker.putNodeLoad(1, 5_000);
        await b.broker.putNodeLoad(2, 5_000);
        const loads = await a.broker.nodeLoads();
        expect([loads.get(a.broker.nodeId), loads.get(b.broker.nodeId)]).toEqual([1, 2]);
      });

      it('hands an operator command to every node', async () => {
        const a = await open();
        const b = await open();
        const message = { kind: 'disconnect' as const, userId: newUser('ctl'), code: 4401 };
        await a.broker.control(message);
        await waitFor(
          () =>
            a.handlers.controls.some((m) => m.userId === message.userId) &&
            b.handlers.controls.some((m) => m.userId === message.userId),
          { what: 'the command on both nodes' },
        );
        expect(b.handlers.controls.filter((m) => m.userId === message.userId)).toEqual([message]);
      });

      it('hands a delivery report to the awaiting node only', async () => {
        const a = await open();
        const b = await open();
        const report: DeliveryReport = {
          userId: newUser('cross-report'),
          id: 'ev_report',
          seq: 3,
          epoch: 'e_y',
          awaitedBy: a.broker.nodeId,
          kind: 'written',
          connections: 1,
        };
        await b.broker.reportDelivery(report);
        await waitFor(() => a.handlers.deliveries.length >= 1, { what: 'the report on a' });
        expect(a.handlers.deliveries).toEqual([report]);
        const back: DeliveryReport = { ...report, awaitedBy: b.broker.nodeId };
        await a.broker.reportDelivery(back);
        await waitFor(() => b.handlers.deliveries.length >= 1, { what: 'the report on b' });
        expect(b.handlers.deliveries).toEqual([back]);
        expect(a.handlers.deliveries).toEqual([report]);
      });
    });
  });
}
