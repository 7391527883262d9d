/**
 * A Redis restart that may have lost acknowledged writes (issue 17): with RDB
 * (or AOF `everysec`), a crash rolls a user's `seq` back while its epoch
 * survives, and new events would reuse seqs clients already hold: the SDK
 * drops them as duplicates, silently. The engine moves such streams to a new
 * epoch instead (RUN_GUARD, scripts.ts); with `appendfsync always` nothing
 * changes. Real `redis-server` processes, SIGKILLed and restarted on the
 * same port and dir.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { BrokerUnavailableError, type PublishOutcome } from '../../src/broker/broker.js';
import { RedisBroker } from '../../src/broker/redis/redis-broker.js';
import { SeqTracker } from '../../src/client/seq-tracker.js';
import { encodeEvent, type EncodedEvent } from '../../src/protocol/event-frame.js';
import { validateEventInput } from '../../src/protocol/event-input.js';
import { RecordingHandlers } from '../helpers/recording-handlers.js';
import {
  RedisServer,
  redisServerMissing,
  type RedisServerOptions,
} from '../helpers/redis-server.js';
import { waitFor } from '../helpers/wait-for.js';

function note(n: number): EncodedEvent {
  const result = validateEventInput({ event: 'note', data: { n }, id: `n-${n}` }, 1024);
  if (!result.ok) throw new Error(result.failure.message);
  return encodeEvent(result.value);
}

describe.skipIf(redisServerMissing)('RedisBroker across a Redis restart', () => {
  const cleanups: (() => Promise<void>)[] = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function server(options: RedisServerOptions): Promise<RedisServer> {
    const made = await RedisServer.start(options);
    cleanups.push(() => made.dispose());
    return made;
  }

  async function node(url: string): Promise<{ broker: RedisBroker; handlers: RecordingHandlers }> {
    const broker = new RedisBroker({ url, commandTimeoutMs: 1_000 });
    const handlers = new RecordingHandlers();
    await broker.start(handlers);
    cleanups.push(() => broker.close());
    return { broker, handlers };
  }

  async function admin(url: string): Promise<Redis> {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    client.on('error', () => undefined); // the server is killed under it on purpose
    await client.connect();
    cleanups.push(async () => void client.disconnect());
    return client;
  }

  /** Publishes, retrying while the node has not reconnected (and probed the new run) yet. */
  async function publish(broker: RedisBroker, userId: string, n: number): Promise<PublishOutcome> {
    return waitFor(
      async () => {
        try {
          return await broker.publish(userId, note(n));
        } catch (error) {
          if (!(error instanceof BrokerUnavailableError)) throw error;
          return undefined;
        }
      },
      { timeoutMs: 15_000, intervalMs: 20, what: `publish n-${n}` },
    );
  }

  const user = (): string => `restart-${randomBytes(4).toString('hex')}`;

  it('RDB: a crash that rolled the seq back moves the stream to a new epoch, and nothing is dropped as a duplicate', async () => {
    const redis = await server({ appendOnly: false });
    const a = await node(redis.url);
    const b = await node(redis.url);
    expect(b.broker.health().persistence).toMatchObject({ proven: false });
    const alice = user();
    await a.broker.subscribe(alice);
    for (let n = 1; n <= 5; n++) await publish(b.broker, alice, n);
    await (await admin(redis.url)).save();
    // Acknowledged to the publisher, seen by the client, then lost with the crash.
    const lost: PublishOutcome[] = [];
    for (let n = 6; n <= 8; n++) lost.push(await publish(b.broker, alice, n));
    const oldEpoch = lost[0]!.epoch;
    expect(lost.map((o) => o.seq)).toEqual([6, 7, 8]);
    await waitFor(() => a.handlers.seqsOf(alice).length === 8, { what: '8 events on node a' });
    // A client that holds all eight, as the SDK keeps it.
    const client = new SeqTracker({ epoch: oldEpoch, lastSeq: 8 });
    const behind = new SeqTracker({ epoch: oldEpoch, lastSeq: 3 });

    await redis.kill();
    await redis.restart(); // loads the snapshot: seq 5, same epoch stored

    const after = await publish(b.broker, alice, 9);
    expect(after.epoch).not.toBe(oldEpoch);
    // The retained events keep their seqs: the new epoch goes on after them.
    expect(after.seq).toBe(6);
    // The follower of node a noticed the move and asked the gateway to re-read.
    await waitFor(() => a.handlers.resyncs.includes(alice), { what: 'onResync on node a' });

    // The client resumes with its cursor: gap, new epoch, everything after
    // what it holds of the retained part, and the new event is not dropped.
    const read = await a.broker.readHistory(alice, { kind: 'position', epoch: oldEpoch, seq: 8 });
    expect(read).toMatchObject({ epoch: after.epoch, gap: true, from: 6, headSeq: 6 });
    expect(client.onWelcome(read.epoch, read.from)).toBe('new-epoch');
    // A reconnect before anything arrived asks only for what it lacks.
    const again = await a.broker.readHistory(alice, {
      kind: 'position',
      epoch: after.epoch,
      seq: client.lastSeq,
    });
    expect(again).toMatchObject({ gap: false, from: 6 });
    expect(read.events.filter((e) => client.accept(e.seq)).map((e) => e.id)).toEqual(['n-9']);

    // A client behind the rollback point gets the retained events it lacks, once.
    const early = await a.broker.readHistory(alice, { kind: 'position', epoch: oldEpoch, seq: 3 });
    expect(early).toMatchObject({ epoch: after.epoch, gap: true, from: 4 });
    behind.onWelcome(early.epoch, early.from);
    expect(early.events.filter((e) => behind.accept(e.seq)).map((e) => e.id)).toEqual([
      'n-4',
      'n-5',
      'n-9',
    ]);

    // A cursor of the new epoch resumes exactly, without a gap.
    const exact = await a.broker.readHistory(alice, {
      kind: 'position',
      epoch: after.epoch,
      seq: 5,
    });
    expect(exact).toMatchObject({ gap: false, from: 6 });
    expect(exact.events.map((e) => e.id)).toEqual(['n-9']);

    // The retry of an event the crash kept answers its first seq, in the new epoch.
    expect(await publish(b.broker, alice, 4)).toMatchObject({
      seq: 4,
      epoch: after.epoch,
      duplicate: true,
    });
    // One move per restart: the next steps stay in the new epoch.
    expect(await publish(b.broker, alice, 10)).toMatchObject({ seq: 7, epoch: after.epoch });
  });

  it('RDB twice: a cursor of an epoch left two restarts ago still resumes after what it holds', async () => {
    const redis = await server({ appendOnly: false });
    const b = await node(redis.url);
    const control = await admin(redis.url);
    const alice = user();
    for (let n = 1; n <= 5; n++) await publish(b.broker, alice, n);
    await control.save();
    const e1 = (await publish(b.broker, alice, 6)).epoch; // seq 6, lost
    await publish(b.broker, alice, 7); // seq 7, lost
    await redis.kill();
    await redis.restart();
    const e2 = await publish(b.broker, alice, 8);
    expect(e2).toMatchObject({ seq: 6 });
    expect(e2.epoch).not.toBe(e1);
    await control.save();
    await publish(b.broker, alice, 9); // seq 7 of e2, lost
    await redis.kill();
    await redis.restart();
    const e3 = await publish(b.broker, alice, 10);
    expect(e3).toMatchObject({ seq: 7 });
    expect(e3.epoch).not.toBe(e2.epoch);

    // Held n-1..n-7 of e1: the retained events after seq 5 (n-8), then n-10.
    const fromE1 = await b.broker.readHistory(alice, { kind: 'position', epoch: e1, seq: 7 });
    expect(fromE1).toMatchObject({ epoch: e3.epoch, gap: true, from: 6 });
    expect(fromE1.events.map((e) => e.id)).toEqual(['n-8', 'n-10']);
    // Held n-8 and n-9 of e2 (seqs 6, 7): only n-10.
    const fromE2 = await b.broker.readHistory(alice, {
      kind: 'position',
      epoch: e2.epoch,
      seq: 7,
    });
    expect(fromE2).toMatchObject({ epoch: e3.epoch, gap: true, from: 7 });
    expect(fromE2.events.map((e) => e.id)).toEqual(['n-10']);
  });

  it('AOF appendfsync always: a SIGKILL and restart keep the epoch, no gap, no resync', async () => {
    const redis = await server({ appendOnly: true, appendFsync: 'always' });
    const a = await node(redis.url);
    const b = await node(redis.url);
    expect(b.broker.health().persistence).toMatchObject({ proven: true });
    const alice = user();
    await a.broker.subscribe(alice);
    const before: PublishOutcome[] = [];
    for (let n = 1; n <= 5; n++) before.push(await publish(b.broker, alice, n));
    await waitFor(() => a.handlers.seqsOf(alice).length === 5, { what: '5 events on node a' });

    await redis.kill();
    await redis.restart();

    const after = await publish(b.broker, alice, 6);
    expect(after).toMatchObject({ seq: 6, epoch: before[0]!.epoch, duplicate: false });
    await waitFor(() => a.handlers.seqsOf(alice).length === 6, { what: 'the 6th event on node a' });
    expect(a.handlers.seqsOf(alice)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(a.handlers.resyncs).toEqual([]);
    const read = await a.broker.readHistory(alice, {
      kind: 'position',
      epoch: before[0]!.epoch,
      seq: 5,
    });
    expect(read).toMatchObject({ epoch: before[0]!.epoch, gap: false, from: 6 });
  });

  it('a CONFIG SET appendfsync everysec at run time is seen, and the writes after it move the epoch on restart', async () => {
    const redis = await server({ appendOnly: true, appendFsync: 'always' });
    const b = await node(redis.url);
    expect(b.broker.health().persistence).toMatchObject({ proven: true });
    const alice = user();
    const first = await publish(b.broker, alice, 1);
    await (await admin(redis.url)).config('SET', 'appendfsync', 'everysec');
    await waitFor(() => b.broker.health().persistence?.proven === false, {
      timeoutMs: 15_000,
      what: 'the node to read the new setting',
    });
    // Written under everysec: this step stamps the stream as unproven.
    expect(await publish(b.broker, alice, 2)).toMatchObject({ seq: 2, epoch: first.epoch });

    await redis.kill();
    await redis.restart(); // back with `always` from its command line

    const next = await publish(b.broker, alice, 3);
    expect(next.epoch).not.toBe(first.epoch);
    expect(next.seq).toBe(3);
    expect(b.broker.health().persistence).toMatchObject({ proven: true });
  });

  it('a Redis whose CONFIG is disabled is unproven, says why, and a restart moves the epoch', async () => {
    const redis = await server({
      appendOnly: true,
      appendFsync: 'always',
      extraArgs: ['--rename-command', 'CONFIG', ''],
    });
    const b = await node(redis.url);
    expect(b.broker.health().persistence).toMatchObject({
      proven: false,
      summary: expect.stringMatching(/CONFIG GET failed/),
    });
    const alice = user();
    const first = await publish(b.broker, alice, 1);

    await redis.kill();
    await redis.restart();

    // The AOF kept everything, but nothing proved it would: a new epoch, told.
    const next = await publish(b.broker, alice, 2);
    expect(next.epoch).not.toBe(first.epoch);
    expect(next.seq).toBe(2);
  });
});
