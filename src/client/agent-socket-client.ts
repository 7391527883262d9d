/**
 * `AgentSocketClient`: one user's connection to the gateway, kept alive across
 * drops, as the app sees it: state, cursor, typed events, waiting for a run's
 * events. The connection itself (sockets, resume, acks, heartbeats, token
 * refresh, reconnects) is `ClientConnection`.
 */
import { isAgentEventName } from '../protocol/agent-events.js';
import type { AgentEventName } from '../protocol/agent-events.js';
import type { EventFrame, WelcomeFrame } from '../protocol/frames.js';
import { ClientConnection } from './client-connection.js';
import { resolveClientOptions } from './client-options.js';
import type {
  AgentEvent,
  AgentEventFrame,
  AgentSocketClientOptions,
  ClientEventMap,
  ClientState,
} from './client-types.js';
import { followRun } from './run-follower.js';
import type { FollowRunOptions } from './run-follower.js';
import type { StreamCursor } from './seq-tracker.js';
import { TypedEmitter } from './typed-emitter.js';
import { nextWelcome, waitForEvent } from './wait-for-event.js';
import type { WaitForEventOptions } from './wait-for-event.js';

export type { WaitForEventOptions } from './wait-for-event.js';

function noop(): void {}

/**
 * The client SDK for browsers and Node 20.
 *
 * @example
 * const client = new AgentSocketClient({
 *   url: 'wss://gateway.example.com/v1/ws',
 *   token: () => fetch('/token').then((r) => r.text()),
 *   storage: sessionStorage,
 * });
 * client.on('state', ({ state }) => console.log(state));
 * client.onEvent('agent_thinking', (e) => render(e.runId, e.data.text));
 * await client.connect();
 * for await (const event of client.run(runId)) console.log(event.event);
 */
export class AgentSocketClient extends TypedEmitter<ClientEventMap> {
  readonly #connection: ClientConnection;

  constructor(options: AgentSocketClientOptions) {
    super(options?.maxListeners);
    const settings = resolveClientOptions(options);
    this.#connection = new ClientConnection(options, settings, (name, payload) =>
      this.emit(name, payload),
    );
  }

  get state(): ClientState {
    return this.#connection.state;
  }

  /** The resume cursor: the stream's epoch and the last seq delivered to the app. */
  get cursor(): StreamCursor | null {
    return this.#connection.cursor;
  }

  /** The welcome of the open connection; null while not open. */
  get welcome(): WelcomeFrame | null {
    return this.#connection.welcome;
  }

  /** Reconnect attempts since a connection last stayed open one heartbeat interval. */
  get reconnectAttempt(): number {
    return this.#connection.reconnectAttempt;
  }

  /** Events dropped as duplicates since the client was created. */
  get duplicatesDropped(): number {
    return this.#connection.duplicatesDropped;
  }

  /** The last events delivered (at most `recentEventsLimit`), oldest first. */
  recentEvents(): readonly EventFrame[] {
    return this.#connection.recent;
  }

  /**
   * Starts connecting (from `closed`); resolves with the next `welcome`, rejects
   * with `ClientClosedError` if the client stops first. While open, resolves at once.
   */
  connect(): Promise<WelcomeFrame> {
    const { state, welcome } = this.#connection;
    if (state === 'open' && welcome) return Promise.resolve(welcome);
    let opened: Promise<WelcomeFrame>;
    try {
      opened = nextWelcome(this);
    } catch (error) {
      // Listener limit: nothing registered, and the client does not start connecting.
      return Promise.reject(error);
    }
    this.#connection.start();
    return opened;
  }

  /** Acks what was received, closes with 1000 and stays closed until `connect()`. */
  close(): void {
    this.#connection.close();
  }

  /**
   * Leaves the current socket as if the network dropped it, and reconnects
   * with backoff, resuming from the cursor. For tests and "reconnect" buttons.
   */
  reconnect(): void {
    if (this.#connection.state === 'closed') {
      void this.connect().catch(noop);
      return;
    }
    this.#connection.reconnect();
  }

  /** Listens to one agent event by name, with its `data` typed. Returns the unsubscribe function. */
  onEvent<K extends AgentEventName>(
    name: K,
    listener: (event: AgentEventFrame<K>) => void,
  ): () => void {
    return this.on('event', (event) => {
      // The gateway validated `data` against the agent event's shape at publish.
      if (event.event === name && event.runId !== undefined) {
        listener(event as unknown as AgentEventFrame<K>);
      }
    });
  }

  /**
   * The first event of run `runId` (named `event`, if given): from the recent
   * events, else the next one to arrive. Rejects with `WaitTimeoutError` after
   * `timeoutMs` (default 30 s), `ClientClosedError` if the client stops.
   */
  waitForEvent<K extends AgentEventName>(
    runId: string,
    event: K,
    options?: WaitForEventOptions,
  ): Promise<AgentEventFrame<K>>;
  waitForEvent(runId: string, event?: string, options?: WaitForEventOptions): Promise<EventFrame>;
  waitForEvent(
    runId: string,
    event?: string,
    options: WaitForEventOptions = {},
  ): Promise<EventFrame> {
    return waitForEvent(this, this.#connection.recent, runId, event, options);
  }

  /**
   * Follows run `runId` from the events already received to `agent_completed`.
   *
   * @example
   * for await (const e of client.run(runId)) if (e.event === 'agent_thinking') show(e.data);
   */
  run(runId: string, options?: FollowRunOptions): AsyncGenerator<EventFrame, void, undefined> {
    return followRun(this, runId, options);
  }

  /** A listener threw: reported as an `error` event, unless an `error` listener threw. */
  protected override onListenerError(error: unknown, name: keyof ClientEventMap): void {
    if (name === 'error') {
      super.onListenerError(error, name);
      return;
    }
    this.#connection.reportError({
      kind: 'listener',
      message: `a "${name}" listener threw`,
      cause: error,
    });
  }
}

/** True when `event` is one of the five agent events; `switch (event.event)` then narrows `data`. */
export function isAgentEvent(event: EventFrame): event is EventFrame & AgentEvent {
  return isAgentEventName(event.event) && typeof event.runId === 'string';
}
