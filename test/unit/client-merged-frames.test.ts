/**
 * Merged deltas (protocol 1.1, `seqFrom`..`seq`) in the client, against a
 * scripted socket: a merged frame counts as its whole range for the cursor,
 * the duplicate filter and the acks; one that overlaps what was delivered
 * (part delivered, part not: a server bug) is neither delivered nor half
 * delivered: the client reports it and resumes from its cursor. `run_snapshot`
 * frames of the current epoch fold into `client.runs`.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AgentSocketClient, SeqTracker } from '../../src/client/index.js';
import type { ClientError, RunSnapshot } from '../../src/client/index.js';
import type { EventFrame } from '../../src/protocol/frames.js';
import { FakeWebSocket, tokenExpiringAt } from '../helpers/fake-websocket.js';

const clients: AgentSocketClient[] = [];

beforeEach(() => {
  vi.useFakeTimers();
  FakeWebSocket.created.length = 0;
});
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  vi.useRealTimers();
});

async function openClient() {
  const client = new AgentSocketClient({
    url: 'ws://127.0.0.1:1/v1/ws',
    token: () => tokenExpiringAt(Date.now() + 3_600_000),
    WebSocket: FakeWebSocket,
    backoff: () => 10,
    ack: { delayMs: 1, maxBatch: 1000 },
  });
  clients.push(client);
  const errors: ClientError[] = [];
  const events: EventFrame[] = [];
  client.on('error', (error) => errors.push(error));
  client.on('event', (event) => events.push(event));
  void client.connect();
  await vi.advanceTimersByTimeAsync(0);
  const socket = FakeWebSocket.last();
  socket.welcome();
  return { client, socket, errors, events };
}

function delta(seq: number, text: string, seqFrom?: number): Record<string, unknown> {
  return {
    type: 'event',
    seq,
    ...(seqFrom !== undefined ? { seqFrom } : {}),
    id: `ev_${seq}`,
    event: 'agent_thinking',
    runId: 'r1',
    ts: 1000 + seq,
    critical: false,
    data: { text },
  };
}

const started = {
  type: 'event',
  seq: 1,
  id: 'ev_1',
  event: 'agent_started',
  runId: 'r1',
  ts: 1001,
  critical: true,
  data: { agent: 'a' },
};

describe('merged frames in the client', () => {
  it('asks for snapshots in the handshake URL', async () => {
    const { socket } = await openClient();
    expect(new URL(socket.url).searchParams.get('snapshots')).toBe('1');
  });

  it('counts a merged frame as its range: cursor, acks, and a repeat of it dropped', async () => {
    const { client, socket, events } = await openClient();
    socket.receive(started);
    socket.receive(delta(4, 'abc', 2));
    expect(client.cursor).toEqual({ epoch: 'e1', lastSeq: 4 });
    // A replay repeating the range (or any seq in it) is a duplicate.
    socket.receive(delta(4, 'abc', 2));
    socket.receive(delta(3, 'b'));
    expect(events.map((e) => e.seq)).toEqual([1, 4]);
    expect(client.duplicatesDropped).toBe(2);
    await vi.advanceTimersByTimeAsync(5);
    expect(socket.sent.filter((f) => f.type === 'ack').at(-1)).toEqual({ type: 'ack', seq: 4 });
    expect(client.runs.get('r1')!.parts).toEqual([
      { kind: 'reasoning', id: 'r2', text: 'abc', open: true },
    ]);
  });

  it('reports a merged frame that overlaps the cursor and resumes from it, delivering none of it', async () => {
    const { client, socket, errors, events } = await openClient();
    socket.receive(started);
    socket.receive(delta(3, 'ab', 2));
    socket.receive(delta(6, 'cdef', 3));
    expect(events.map((e) => e.seq)).toEqual([1, 3]);
    expect(errors.map((e) => e.kind)).toEqual(['protocol']);
    expect(errors[0]!.message).toContain('3..6 overlaps delivered seq 3');
    expect(client.state).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(20);
    const next = FakeWebSocket.last();
    expect(next).not.toBe(socket);
    expect(new URL(next.url).searchParams.get('lastSeq')).toBe('3');
    expect(client.runs.get('r1')!.parts[0]).toMatchObject({ text: 'ab' });
  });

  it('folds a run_snapshot frame of the current epoch into client.runs, and skips the events it holds', async () => {
    const { client, socket } = await openClient();
    const run: RunSnapshot = {
      runId: 'r9',
      agent: 'a',
      input: 'q',
      status: 'running',
      startedSeq: 1,
      upToSeq: 5,
      epoch: 'e1',
      startedAt: 1001,
      updatedAt: 1005,
      parts: [{ kind: 'reasoning', id: 'r2', text: 'abcd', open: true }],
    };
    const updates: number[] = [];
    client.on('run', (r) => updates.push(r.upToSeq));
    socket.receive({ type: 'run_snapshot', runId: 'r9', upToSeq: 5, epoch: 'e1', run });
    // Another epoch's snapshot means nothing to this stream.
    socket.receive({ type: 'run_snapshot', runId: 'rX', upToSeq: 5, epoch: 'e0', run });
    socket.receive({ ...delta(6, 'e'), runId: 'r9' });
    expect(client.runs.has('rX')).toBe(false);
    expect(client.runs.get('r9')!.parts[0]).toMatchObject({ text: 'abcde' });
    expect(updates).toEqual([5, 6]);
  });
});

describe('SeqTracker.overlaps', () => {
  it('is true only for a range that starts at or before the cursor and ends after it', () => {
    const tracker = new SeqTracker({ epoch: 'e', lastSeq: 10 });
    expect(tracker.overlaps(11, 15)).toBe(false);
    expect(tracker.overlaps(5, 10)).toBe(false);
    expect(tracker.overlaps(10, 11)).toBe(true);
    expect(tracker.overlaps(1, 20)).toBe(true);
  });
});
