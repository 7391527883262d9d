/**
 * Follows one agent run: its events in seq order, from those the client
 * already holds (recent events) to `agent_completed`, then the iteration ends.
 */
import type { EventFrame } from '../protocol/frames.js';
import { ClientClosedError } from './client-errors.js';
import type { ClientEventMap } from './client-types.js';
import type { Listener } from './typed-emitter.js';

/** What a run follower needs from the client. */
export interface RunSource {
  on<K extends keyof ClientEventMap>(name: K, listener: Listener<ClientEventMap[K]>): () => void;
  recentEvents(): readonly EventFrame[];
}

export interface FollowRunOptions {
  /** Start with the run's events the client already received. Default true. */
  includeRecent?: boolean;
  /** Events buffered while the consumer is slow; past it the iteration throws `RangeError`. Default 10 000. */
  maxBuffered?: number;
}

/** Iterates the events of `runId` until `agent_completed` (yielded, then done). */
export async function* followRun(
  client: RunSource,
  runId: string,
  options: FollowRunOptions = {},
): AsyncGenerator<EventFrame, void, undefined> {
  const maxBuffered = options.maxBuffered ?? 10_000;
  const queue: EventFrame[] =
    options.includeRecent === false ? [] : client.recentEvents().filter((e) => e.runId === runId);
  // An object, not a `let`: it is written by the listeners below.
  const status: { failure: Error | null; wake: (() => void) | null } = {
    failure: null,
    wake: null,
  };
  const offEvent = client.on('event', (event) => {
    if (event.runId !== runId || status.failure) return;
    if (queue.length >= maxBuffered) {
      status.failure = new RangeError(`run ${runId}: more than ${maxBuffered} events unread`);
    } else {
      queue.push(event);
    }
    status.wake?.();
  });
  let offClosed: () => void;
  try {
    offClosed = client.on('closed', (info) => {
      status.failure ??= new ClientClosedError(info);
      status.wake?.();
    });
  } catch (error) {
    // Listener limit: undo the first listener, or it would stay for good.
    offEvent();
    throw error;
  }
  try {
    for (;;) {
      const next = queue.shift();
      if (next) {
        yield next;
        if (next.event === 'agent_completed') return;
        continue;
      }
      if (status.failure) throw status.failure;
      await new Promise<void>((resolve) => {
        status.wake = resolve;
      });
      status.wake = null;
    }
  } finally {
    offEvent();
    offClosed();
  }
}
