/**
 * Protocol 1.1, "Run snapshots" on the WebSocket, over real sockets, on the
 * memory engine and on Redis: a client that resumes with `snapshots=1` after
 * a long run gets one `run_snapshot` and only the run's later events, and the
 * text it assembles is the published text byte for byte; a 1.0 client (no
 * `snapshots`) gets no snapshot and still every event, merged replay frames
 * standing for their ranges.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RedisBroker } from '../../src/broker/redis/redis-broker.js';
import type { EventFrame, RunSnapshotFrame, WelcomeFrame } from '../../src/protocol/frames.js';
import { foldRunFrame } from '../../src/runs/run-snapshot.js';
import type { RunSnapshot } from '../../src/runs/run-types.js';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';
import { redisServerMissing } from '../helpers/redis-server.js';
import { useRedisSuite } from '../helpers/redis-suite.js';
import { expectRefusal, type TestClient } from '../helpers/test-client.js';
import { waitFor } from '../helpers/wait-for.js';

const RUN_ID = 'run-long';
const HISTORY = 1000;
const DELTAS = 5000;
/** Deltas published after the resume: the run goes on live. */
const LIVE_DELTAS = 150;
/** What the client had when it left. */
const LEFT_AT = 10;

type Publish = (event: string, data: Record<string, unknown>) => Promise<number>;

/** A user of its own per test: the Redis suite's server outlives a test. */
let users = 0;

function publisherOf(h: Harness, userId: string): Publish {
  return async (event, data) =>
    (await h.gateway.publish(userId, { event, runId: RUN_ID, data: data as never })).seq;
}

/** One character per delta, escaping and multi-byte UTF-8 among them. */
function deltaText(i: number): string {
  return 'abcdefghij "\\é€\n'[i % 16] as string;
}

/**
 * The run: started, `LEFT_AT - 1` deltas (what the client saw), then the
 * rest of `DELTAS` deltas with two tool calls among them. Returns the text.
 */
async function publishRun(publish: Publish, seen: () => Promise<void>): Promise<string> {
  let text = '';
  await publish('agent_started', { agent: 'writer' });
  for (let i = 0; i < DELTAS; i++) {
    if (i === LEFT_AT - 1) await seen();
    if (i === 2000 || i === 4000) {
      const toolCallId = `t${i}`;
      await publish('tool_executing', { toolCallId, tool: 'search', args: { i } });
      await publish('tool_completed', { toolCallId, tool: 'search', result: { hits: i } });
    }
    text += deltaText(i);
    await publish('agent_thinking', { text: deltaText(i) });
  }
  return text;
}

function reasoningOf(run: RunSnapshot | undefined): string {
  return (run?.parts ?? []).map((part) => (part.kind === 'reasoning' ? part.text : '')).join('');
}

function scenario(start: () => Promise<Harness>): void {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('a client that left at seq 10 resumes with snapshots=1: one run_snapshot, at most 200 events of the run, the same text', async () => {
    h = await start();
    const harness = h;
    const user = `u${++users}`;
    const publish = publisherOf(harness, user);
    let left: WelcomeFrame | undefined;
    const text = await publishRun(publish, async () => {
      const first = await harness.connect(user);
      left = await first.welcome();
      await waitFor(() => first.events().at(-1)?.seq === LEFT_AT, { what: 'the first 10' });
      first.close();
      await first.waitForClose();
    });
    expect(left?.replay.count).toBe(LEFT_AT);

    const client = await harness.connect(user, {
      query: { lastSeq: LEFT_AT, epoch: left!.epoch, snapshots: 1 },
    });
    let liveText = '';
    for (let i = 0; i < LIVE_DELTAS; i++) {
      liveText += deltaText(i);
      await publish('agent_thinking', { text: deltaText(i) });
    }
    const completedSeq = await publish('agent_completed', { status: 'succeeded' });
    await waitFor(() => client.events().at(-1)?.seq === completedSeq, {
      timeoutMs: 20_000,
      what: 'the end of the run',
    });

    const welcome = await client.welcome();
    const snapshots = client.frames.filter((f): f is RunSnapshotFrame => f.type === 'run_snapshot');
    expect(snapshots).toHaveLength(1);
    const [snapshot] = snapshots as [RunSnapshotFrame];
    expect(snapshot).toMatchObject({ runId: RUN_ID, epoch: welcome.epoch });
    expect(snapshot.run.startedSeq).toBe(1);
    expect(welcome.replay.runs).toEqual([{ runId: RUN_ID, upToSeq: snapshot.upToSeq }]);
    expect(welcome.replay.gap).toBe(false);
    // The snapshot comes right after the welcome, before any event.
    expect(client.frames.slice(0, 2).map((f) => f.type)).toEqual(['welcome', 'run_snapshot']);

    const runEvents = client.events().filter((e) => e.runId === RUN_ID);
    expect(runEvents.length).toBeLessThanOrEqual(200);
    expect(runEvents.every((e) => (e.seqFrom ?? e.seq) > snapshot.upToSeq)).toBe(true);
    let run: RunSnapshot | undefined = snapshot.run;
    for (const event of runEvents) run = foldRunFrame(run, event, welcome.epoch);
    expect(reasoningOf(run)).toBe(text + liveText);
    expect(run?.status).toBe('succeeded');
    expect(run?.parts.filter((p) => p.kind === 'tool')).toHaveLength(2);
    // Acks up to the last seq are accepted: covered events count as sent.
    client.ack(completedSeq);
    await waitFor(
      () => harness.gateway.connections(user).some((c) => c.ackedSeq === completedSeq),
      { what: 'the ack of the last seq' },
    );
    expect(client.frames.some((f) => f.type === 'error')).toBe(false);
  }, 60_000);

  it('a 1.0 client resuming the same way gets no run_snapshot and still every event in history', async () => {
    h = await start();
    const harness = h;
    const user = `u${++users}`;
    const publish = publisherOf(harness, user);
    let left: WelcomeFrame | undefined;
    await publishRun(publish, async () => {
      const first = await harness.connect(user);
      left = await first.welcome();
      await waitFor(() => first.events().at(-1)?.seq === LEFT_AT, { what: 'the first 10' });
      first.close();
      await first.waitForClose();
    });
    const client: TestClient = await harness.connect(user, {
      query: { lastSeq: LEFT_AT, epoch: left!.epoch },
    });
    const welcome = await client.welcome();
    await waitFor(() => client.events().at(-1)?.seq === welcome.headSeq, {
      what: 'the replay',
    });
    expect(client.frames.some((f) => f.type === 'run_snapshot')).toBe(false);
    expect(welcome.replay.runs).toBeUndefined();
    // History keeps the last 1000 events: the start is lost and said so.
    expect(welcome.replay.gap).toBe(true);
    const events: EventFrame[] = client.events();
    let next = welcome.replay.from;
    for (const event of events) {
      expect(event.seqFrom ?? event.seq).toBe(next);
      next = event.seq + 1;
    }
    expect(next).toBe(welcome.headSeq + 1);
    // Merged replay frames are far fewer than the events they carry.
    expect(events.length).toBeLessThan(HISTORY / 10);
  }, 60_000);
}

describe('run snapshots on the WebSocket: memory engine', () => {
  scenario(() => startGateway({ historySize: HISTORY }));
});

describe.skipIf(redisServerMissing)('run snapshots on the WebSocket: Redis engine', () => {
  const suite = useRedisSuite();
  scenario(() =>
    startGateway({ broker: new RedisBroker({ url: suite.server.url, historySize: HISTORY }) }),
  );
});

describe('run snapshots on the WebSocket: the rule', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  const snapshotsOf = (client: TestClient): RunSnapshotFrame[] =>
    client.frames.filter((f): f is RunSnapshotFrame => f.type === 'run_snapshot');

  it('refuses a snapshots parameter other than 0 or 1 with 400 naming it', async () => {
    h = await startGateway();
    const refusal = await expectRefusal(h.wsUrl, {
      token: await h.token('alice'),
      query: { snapshots: 'yes' },
    });
    expect(refusal.status).toBe(400);
    expect(refusal.body.error).toMatchObject({ code: 'bad_request', field: 'snapshots' });
  });

  it('sends no snapshot to a usable cursor within the threshold; sends one when the start is out of history and there is no cursor', async () => {
    h = await startGateway({ historySize: 20 });
    const publish = publisherOf(h, 'alice');
    await publish('agent_started', { agent: 'short' });
    for (let i = 0; i < 5; i++) await publish('agent_thinking', { text: deltaText(i) });
    const first = await h.connect('alice', { query: { snapshots: 1 } });
    const { epoch } = await first.welcome();
    // Its start is in the replay: events, not a snapshot.
    expect(snapshotsOf(first)).toEqual([]);
    await waitFor(() => first.events().at(-1)?.seq === 6, { what: 'the replay' });
    first.close();

    for (let i = 5; i < 10; i++) await publish('agent_thinking', { text: deltaText(i) });
    const resumed = await h.connect('alice', { query: { lastSeq: 6, epoch, snapshots: 1 } });
    expect((await resumed.welcome()).replay).toEqual({ from: 7, count: 5, gap: false });
    expect(snapshotsOf(resumed)).toEqual([]);
    resumed.close();

    // 30 more: the run's start leaves the 20 events of history.
    let text = '';
    for (let i = 0; i < 10; i++) text += deltaText(i);
    for (let i = 10; i < 40; i++) {
      text += deltaText(i);
      await publish('agent_thinking', { text: deltaText(i) });
    }
    const fresh = await h.connect('alice', { query: { snapshots: 1 } });
    const welcome = await fresh.welcome();
    expect(welcome.replay.gap).toBe(false);
    await waitFor(() => snapshotsOf(fresh).length === 1, { what: 'the snapshot' });
    expect(reasoningOf(snapshotsOf(fresh)[0]?.run)).toBe(text);
    expect(welcome.replay.count).toBe(0);
  });
});
