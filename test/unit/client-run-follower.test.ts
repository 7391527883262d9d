import { describe, expect, it } from 'vitest';
import { ClientClosedError, TypedEmitter, followRun } from '../../src/client/index.js';
import type { ClientEventMap, RunSource } from '../../src/client/index.js';
import type { EventFrame } from '../../src/protocol/index.js';

/** The two things a follower reads from a client: its events and its recent ones. */
class EventSource extends TypedEmitter<ClientEventMap> implements RunSource {
  recent: EventFrame[] = [];
  recentEvents(): readonly EventFrame[] {
    return this.recent;
  }
  deliver(frame: EventFrame): void {
    this.recent.push(frame);
    this.emit('event', frame);
  }
  closeWith(code: number): void {
    this.emit('closed', { code, reason: 'test', advice: 'stop' });
  }
}

let seq = 0;
function frame(runId: string, event: string): EventFrame {
  seq++;
  return { type: 'event', seq, id: `ev_${seq}`, event, runId, ts: 0, critical: false, data: {} };
}

describe('followRun', () => {
  it('yields the recent and the live events of one run, and ends after agent_completed', async () => {
    const source = new EventSource();
    source.deliver(frame('r1', 'agent_started'));
    source.deliver(frame('r2', 'agent_started'));
    const run = followRun(source, 'r1');
    const first = await run.next();
    expect(first.value?.event).toBe('agent_started');
    source.deliver(frame('r1', 'agent_thinking'));
    source.deliver(frame('r2', 'agent_thinking'));
    source.deliver(frame('r1', 'agent_completed'));
    source.deliver(frame('r1', 'after_the_end'));
    const rest: string[] = [];
    for await (const e of run) rest.push(e.event);
    expect(rest).toEqual(['agent_thinking', 'agent_completed']);
    expect(source.listenerCount('event')).toBe(0);
  });

  it('throws ClientClosedError when the client closes before the run ends', async () => {
    const source = new EventSource();
    const run = followRun(source, 'r1', { includeRecent: false });
    const pending = run.next();
    source.closeWith(4403);
    await expect(pending).rejects.toBeInstanceOf(ClientClosedError);
    expect(source.listenerCount('closed')).toBe(0);
  });

  it('fails with RangeError when more than maxBuffered events wait unread', async () => {
    const source = new EventSource();
    const run = followRun(source, 'r1', { maxBuffered: 2 });
    source.deliver(frame('r1', 'a'));
    const first = await run.next(); // subscribes; 'a' came from the recent events
    expect(first.value?.event).toBe('a');
    for (let i = 0; i < 3; i++) source.deliver(frame('r1', 'agent_thinking'));
    await expect(run.next()).resolves.toMatchObject({ done: false });
    await expect(run.next()).resolves.toMatchObject({ done: false });
    await expect(run.next()).rejects.toBeInstanceOf(RangeError);
  });
});
