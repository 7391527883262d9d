/**
 * `waitForEvent`: the first event of a run, from the recent events or the
 * next one to arrive, bounded by a timeout, a close and an abort signal.
 */
import type { EventFrame } from '../protocol/frames.js';
import { ClientClosedError, WaitTimeoutError } from './client-errors.js';
import type { ClientEventMap } from './client-types.js';
import type { TypedEmitter } from './typed-emitter.js';

export interface WaitForEventOptions {
  /** Default 30 000 ms. */
  timeoutMs?: number;
  /** Look at the recent events first. Default true. */
  includeRecent?: boolean;
  signal?: AbortSignal;
}

function noop(): void {}

/**
 * The first event of run `runId` (named `event`, if given) among `recent` or
 * emitted by `client`. Rejects with `WaitTimeoutError` after `timeoutMs`,
 * `ClientClosedError` if the client stops, the signal's reason on abort.
 */
export function waitForEvent(
  client: TypedEmitter<ClientEventMap>,
  recent: readonly EventFrame[],
  runId: string,
  event: string | undefined,
  options: WaitForEventOptions,
): Promise<EventFrame> {
  const matches = (e: EventFrame): boolean =>
    e.runId === runId && (event === undefined || e.event === event);
  if (options.includeRecent !== false) {
    const found = recent.find(matches);
    if (found) return Promise.resolve(found);
  }
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise<EventFrame>((resolve, reject) => {
    // Listeners first, the timer last: when `on` throws (listener limit) the
    // promise rejects with nothing left registered and no timer pending.
    // An object: the timer is set after the listeners, which `cleanup` may undo first.
    const pending: { timer?: ReturnType<typeof setTimeout> } = {};
    let offEvent = noop;
    let offClosed = noop;
    const cleanup = (): void => {
      clearTimeout(pending.timer);
      offEvent();
      offClosed();
      options.signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = (): void => {
      cleanup();
      reject(options.signal?.reason ?? new Error('aborted'));
    };
    try {
      offEvent = client.on('event', (e) => {
        if (!matches(e)) return;
        cleanup();
        resolve(e);
      });
      offClosed = client.on('closed', (info) => {
        cleanup();
        reject(new ClientClosedError(info));
      });
    } catch (error) {
      cleanup();
      throw error;
    }
    pending.timer = setTimeout(() => {
      cleanup();
      reject(
        new WaitTimeoutError(
          `no ${event ?? 'event'} of run ${runId.slice(0, 128)} within ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The next `welcome` of `client`, or a `ClientClosedError` if it stops first.
 * Throws at once (listener limit) with nothing left registered.
 */
export function nextWelcome(
  client: TypedEmitter<ClientEventMap>,
): Promise<ClientEventMap['welcome']> {
  let resolveOpened: (welcome: ClientEventMap['welcome']) => void = noop;
  let rejectOpened: (error: Error) => void = noop;
  const opened = new Promise<ClientEventMap['welcome']>((resolve, reject) => {
    resolveOpened = resolve;
    rejectOpened = reject;
  });
  // Registered outside the executor: when `once` throws (listener limit), the
  // first listener is undone before the error goes up.
  let offClosed = noop;
  const offWelcome = client.once('welcome', (welcome) => {
    offClosed();
    resolveOpened(welcome);
  });
  try {
    offClosed = client.once('closed', (info) => {
      offWelcome();
      rejectOpened(new ClientClosedError(info));
    });
  } catch (error) {
    offWelcome();
    throw error;
  }
  return opened;
}
