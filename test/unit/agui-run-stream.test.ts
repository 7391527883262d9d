/**
 * `AguiRunStream` against races a real engine cannot be made to hit on cue:
 * history trimmed between the snapshot read and the history read, an epoch
 * moved by a Redis restart that kept the seqs, a response behind but below
 * its high-water mark. The engine is a stand-in answering the reads those
 * races produce; the mapping, fold, coalescing and SSE encoding are real.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { agentsocketEventOf } from '../../src/agui/agentsocket-event.js';
import type { HistoryRead, StreamEvent as StoredEvent } from '../../src/broker/stream-engine.js';
import { publicRunSnapshot } from '../../src/broker/run-store.js';
import {
  AguiRunStream,
  type AguiStreamSettings,
  type SseSink,
} from '../../src/gateway/agui-run-stream.js';
import { encodeEventFrame } from '../../src/protocol/event-frame.js';
import type { JsonValue } from '../../src/protocol/frames.js';
import { foldRunEvent } from '../../src/runs/run-snapshot.js';
import type { RunSnapshot } from '../../src/runs/run-types.js';

const EPOCH = 'e1';
const RUN = 'r1';

function stored(seq: number, event: string, data: JsonValue, runId?: string): StoredEvent {
  const run = runId === undefined ? '' : `,"runId":"${runId}"`;
  const payload = `"event":"${event}"${run},"critical":false,"data":${JSON.stringify(data)}}`;
  return { seq, id: `id${seq}`, event, critical: false, ts: 1000 + seq, payload };
}

function snapshotOf(events: readonly StoredEvent[]): RunSnapshot {
  let snapshot: RunSnapshot | undefined;
  for (const event of events) {
    const { data } = agentsocketEventOf(encodeEventFrame(event), EPOCH);
    snapshot = foldRunEvent(snapshot, {
      seq: event.seq,
      epoch: EPOCH,
      event: event.event,
      data,
      ts: event.ts,
      runId: RUN,
    });
  }
  return publicRunSnapshot(snapshot!);
}

interface Harness {
  stream: AguiRunStream;
  /** Hands a live event of `epoch` to the stream, as the engine's listener does. */
  live(event: StoredEvent, epoch?: string): void;
}

function harness(
  snapshot: RunSnapshot,
  readHistory: (live: Harness['live']) => Promise<HistoryRead>,
  settings: Partial<AguiStreamSettings> = {},
): Harness {
  const live = (event: StoredEvent, epoch = EPOCH): void => {
    const frame = encodeEventFrame(event);
    stream.onEvent(agentsocketEventOf(frame, epoch), frame);
  };
  const stream: AguiRunStream = new AguiRunStream(
    { userId: 'u', runId: RUN, position: null, requestMessages: [], waitMs: 0, expiresAt: null },
    {
      runs: { readRun: () => Promise.resolve(snapshot) },
      streams: { readHistory: () => readHistory(live) },
      settings: {
        coalesceWindowMs: 0,
        keepAliveMs: 60_000,
        maxBufferedBytes: 1 << 20,
        maxReplayBuffer: 100,
        ...settings,
      },
      logger: pino({ enabled: false }),
      ended: () => {},
      interrupted: () => {},
    },
  );
  return { stream, live };
}

interface RecordingSink extends SseSink {
  text: () => string;
  ended: () => boolean;
}

function recordingSink(bufferedBytes = 0, needsDrain = false): RecordingSink {
  let text = '';
  let ended = false;
  return {
    write: (chunk) => void (text += chunk),
    bufferedBytes,
    needsDrain,
    end: () => void (ended = true),
    onDrain: () => {},
    text: () => text,
    ended: () => ended,
  };
}

/** The AG-UI events written, as `TYPE` or `TYPE(delta)`, plus a stream_interrupted's reason. */
function written(text: string): string[] {
  return [...text.matchAll(/^data: (.*)$/gm)].map((match) => {
    const event = JSON.parse(match[1]!) as { type: string; delta?: string; code?: string };
    if (event.delta !== undefined) return `${event.type}(${event.delta})`;
    return event.code === undefined ? event.type : `${event.type}:${event.code}`;
  });
}

const STARTED = stored(1, 'agent_started', { agent: 'a' }, RUN);
const THINK_A = stored(2, 'agent_thinking', { text: 'a' }, RUN);
const THINK_B = stored(3, 'agent_thinking', { text: 'b' }, RUN);
const THINK_C = stored(4, 'agent_thinking', { text: 'c' }, RUN);
const OTHER = stored(5, 'other', { x: 1 });
const DONE = stored(6, 'agent_completed', { status: 'succeeded', result: 'x' }, RUN);

describe('snapshot mode with history trimmed between the snapshot read and the history read', () => {
  it('takes the run events after the snapshot from the live buffer', async () => {
    const { stream, live } = harness(snapshotOf([STARTED, THINK_A]), (push) => {
      // Published after the snapshot read, and trimmed before this read.
      push(THINK_B);
      push(THINK_C);
      push(OTHER);
      return Promise.resolve({
        epoch: EPOCH,
        headSeq: 5,
        ackedSeq: 0,
        from: 5,
        gap: true,
        events: [OTHER],
      });
    });
    await stream.prepare();
    const sink = recordingSink();
    stream.attach(sink);
    live(DONE);
    const types = written(sink.text());
    expect(types).toContain('REASONING_MESSAGE_CONTENT(b)');
    expect(types).toContain('REASONING_MESSAGE_CONTENT(c)');
    expect(types.at(-1)).toBe('RUN_FINISHED');
    expect(sink.ended()).toBe(true);
  });

  it('ends with history_lost when the buffer overflowed meanwhile', async () => {
    const trimmed: HistoryRead = {
      epoch: EPOCH,
      headSeq: 5,
      ackedSeq: 0,
      from: 5,
      gap: true,
      events: [OTHER],
    };
    let reads = 0;
    const { stream } = harness(
      snapshotOf([STARTED, THINK_A]),
      (push) => {
        reads++;
        if (reads === 1) [THINK_B, THINK_C, OTHER].forEach((event) => push(event));
        return Promise.resolve(trimmed);
      },
      { maxReplayBuffer: 1 },
    );
    await stream.prepare();
    const sink = recordingSink();
    stream.attach(sink);
    // The re-read after the overflow finds the same gap.
    await expect.poll(() => sink.ended()).toBe(true);
    const types = written(sink.text());
    expect(types).toContain('REASONING_MESSAGE_CONTENT(b)');
    expect(types.at(-1)).toBe('RUN_ERROR:agentsocket.stream_interrupted');
    expect(sink.text()).toContain('history_lost');
  });
});

describe('snapshot mode when the stream is in another epoch than the snapshot', () => {
  // A stream started over (FLUSHALL, lost data) reuses seqs from 1: its read
  // looks like one of a move that kept them, so neither may carry on.
  it('ends with history_lost even when the read starts at or before the tail', async () => {
    const { stream } = harness(snapshotOf([STARTED, THINK_A]), () =>
      Promise.resolve({
        epoch: 'e2',
        headSeq: 3,
        ackedSeq: 0,
        from: 3,
        gap: true,
        events: [THINK_B],
      }),
    );
    await stream.prepare();
    const sink = recordingSink();
    stream.attach(sink);
    expect(sink.ended()).toBe(true);
    expect(sink.text()).toContain('history_lost');
    expect(sink.text()).not.toContain('REASONING_MESSAGE_CONTENT(b)');
  });

  it('still ends with history_lost when the new epoch lost the tail', async () => {
    const { stream } = harness(snapshotOf([STARTED, THINK_A]), () =>
      Promise.resolve({
        epoch: 'e2',
        headSeq: 5,
        ackedSeq: 0,
        from: 5,
        gap: true,
        events: [OTHER],
      }),
    );
    await stream.prepare();
    const sink = recordingSink();
    stream.attach(sink);
    expect(sink.ended()).toBe(true);
    expect(sink.text()).toContain('history_lost');
  });
});

describe('a response behind but below its high-water mark', () => {
  it('gets the terminal event without waiting for a drain that never comes', async () => {
    const { stream, live } = harness(
      snapshotOf([STARTED]),
      () =>
        Promise.resolve({ epoch: EPOCH, headSeq: 1, ackedSeq: 0, from: 2, gap: false, events: [] }),
      { maxBufferedBytes: 4000 },
    );
    await stream.prepare();
    // Past half of maxBufferedBytes, yet no 'drain' will be emitted.
    const sink = recordingSink(2500, false);
    stream.attach(sink);
    live(stored(2, 'agent_completed', { status: 'succeeded', result: 'x' }, RUN));
    expect(written(sink.text()).at(-1)).toBe('RUN_FINISHED');
    expect(sink.ended()).toBe(true);
  });
});
