/**
 * Protocol 1.1, "Coalesced deltas", over real sockets: a token flood to a
 * reader that falls behind is merged, never dropped and never cut off with
 * 4429; a barrier (a critical `tool_completed`) is never overtaken; a reader
 * that keeps up never sees a merged frame.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';
import { listenOnUnixSocket, readSlowly, type UnixEndpoint } from '../helpers/slow-reader.js';
import { TestClient } from '../helpers/test-client.js';
import { waitFor } from '../helpers/wait-for.js';
import type { EventFrame } from '../../src/protocol/frames.js';

const DELTAS = 20_000;
const RUN_ID = 'run-flood';
/** One character per delta, escaping and multi-byte UTF-8 among them. */
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz "\\éß€\n';

let h: Harness | undefined;
let unix: UnixEndpoint | undefined;
let slow: TestClient | undefined;
afterEach(async () => {
  slow?.terminate();
  slow = undefined;
  await unix?.close();
  await h?.close();
  unix = undefined;
  h = undefined;
});

/** Publishes the flood at full speed; returns the text and the seq of the critical event. */
async function publishFlood(harness: Harness): Promise<{ text: string; barrierSeq: number }> {
  const publish = (event: string, data: Record<string, unknown>) =>
    harness.gateway.publish('alice', { event, runId: RUN_ID, data: data as never });
  await publish('agent_started', { agent: 'flood' });
  let text = '';
  let barrierSeq = 0;
  for (let i = 0; i < DELTAS; i++) {
    if (i === DELTAS / 2) {
      await publish('tool_executing', { toolCallId: 't1', tool: 'search', args: { q: 'x' } });
      barrierSeq = (
        await publish('tool_completed', { toolCallId: 't1', tool: 'search', result: 'ok' })
      ).seq;
    }
    const char = ALPHABET[i % ALPHABET.length] as string;
    text += char;
    await publish('agent_thinking', { text: char });
  }
  await publish('agent_completed', { status: 'succeeded' });
  return { text, barrierSeq };
}

/** Every seq from 1 to the last exactly once, in order, counting a merged frame as its range. */
function expectWholeRange(events: readonly EventFrame[]): void {
  let next = 1;
  for (const event of events) {
    expect(event.seqFrom ?? event.seq, `frame ending at ${event.seq}`).toBe(next);
    expect(event.seq).toBeGreaterThanOrEqual(next);
    next = event.seq + 1;
  }
}

function thinkingText(events: readonly EventFrame[]): string {
  return events
    .filter((e) => e.event === 'agent_thinking')
    .map((e) => (e.data as { text: string }).text)
    .join('');
}

async function coalescedCount(harness: Harness): Promise<number> {
  return (await harness.gateway.metrics.coalescedEvents.get()).values[0]?.value ?? 0;
}

describe('coalesced deltas on the wire', () => {
  it('merges a flood for a reader at 20 KB/s: not cut off, the same text, under 2,000 frames, the barrier in place; a fast reader sees no seqFrom', async () => {
    h = await startGateway({
      // The critical events are acked by nobody here: give them time.
      ackTimeoutMs: 120_000,
      limits: { coalesceAboveBytes: 32 * 1024 },
    });
    unix = await listenOnUnixSocket(h);
    const fast = await h.connect('alice');
    slow = await TestClient.connect(unix.wsUrl, { token: await h.token('alice') });
    const reader = slow;
    readSlowly(reader, 20_000);

    const { text, barrierSeq } = await publishFlood(h);
    const last = DELTAS + 4;

    await fast.waitForEvents(last, 30_000);
    const fastEvents = fast.events();
    expect(fastEvents.filter((e) => e.seqFrom !== undefined)).toEqual([]);
    expect(thinkingText(fastEvents)).toBe(text);

    await waitFor(() => reader.events().at(-1)?.seq === last || reader.closedWith, {
      timeoutMs: 90_000,
      intervalMs: 50,
      what: 'the slow reader to get the whole run',
    });
    expect(reader.closedWith).toBeNull();
    const events = reader.events();
    expectWholeRange(events);
    expect(thinkingText(events)).toBe(text);
    expect(events.length).toBeLessThan(2_000);
    expect(events.some((e) => e.seqFrom !== undefined)).toBe(true);

    const barrier = events.findIndex((e) => e.seq === barrierSeq);
    expect(events[barrier]?.event).toBe('tool_completed');
    expect(events[barrier]?.seqFrom).toBeUndefined();
    expect(events.slice(0, barrier).every((e) => e.seq < barrierSeq)).toBe(true);
    expect(events.slice(barrier + 1).every((e) => (e.seqFrom ?? e.seq) > barrierSeq)).toBe(true);
    expect(await coalescedCount(h)).toBeGreaterThan(DELTAS / 2);
  }, 120_000);
});
