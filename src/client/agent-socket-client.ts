/**
 * `AgentSocketClient`: one user's connection to the gateway, kept alive across
 * drops, as the app sees it: state, cursor, typed events, waiting for a run's
 * events. The connection itself (sockets, resume, acks, heartbeats, token
 * refresh, reconnects) is `ClientConnection`.
 */
import { isAgentEventName } from '../protocol/agent-events.js';
import type { EventFrame, WelcomeFrame } from '../protocol/frames.js';
import type {
  EventMap,
  KnownEventName,
  NoCustomEvents,
  TypedEventFrame,
} from '../protocol/typed-events.js';
import type { RunSnapshot } from '../runs/run-types.js';
import { ClientConnection } from './client-connection.js';
import { resolveClientOptions } from './client-options.js';
import type { ResolvedClientOptions } from './client-options.js';
import type {
  AgentEvent,
  AgentSocketClientOptions,
  ClientEventMap,
  ClientState,
  TransportKind,
} from './client-types.js';
import { followRun } from './run-follower.js';
import type { FollowRunOptions } from './run-follower.js';
import { RunTracker } from './run-tracker.js';
import { DEFAULT_FETCH_RUNS, httpBaseFromSocketUrl, requestRun, requestRuns } from './runs-api.js';
import type { FetchLike, RunsRequest } from './runs-api.js';
import type { StreamCursor } from './seq-tracker.js';
import { TokenFetcher } from './token-fetcher.js';
import { TypedEmitter } from './typed-emitter.js';
import { nextWelcome, waitForEvent } from './wait-for-event.js';
import type { WaitForEventOptions } from './wait-for-event.js';

export type { WaitForEventOptions } from './wait-for-event.js';

function noop(): void {}

export interface FetchRunsOptions {
  /** How many runs, newest first. Default 20, at most 100 (the gateway's bounds). */
  limit?: number;
}

/**
 * The client SDK for browsers and Node 20. `E` declares the app's own events
 * (`protocol/typed-events.ts`): `onEvent` and `waitForEvent` then type their `data`.
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
 *
 * // The app's own events, declared once:
 * type MyEvents = { 'order.shipped': { orderId: string } };
 * const typed = new AgentSocketClient<MyEvents>({ url, token });
 * typed.onEvent('order.shipped', (e) => show(e.data.orderId));
 */
export class AgentSocketClient<
  E extends EventMap<E> = NoCustomEvents,
> extends TypedEmitter<ClientEventMap> {
  readonly #connection: ClientConnection;
  readonly #options: AgentSocketClientOptions;
  readonly #settings: ResolvedClientOptions;
  readonly #runs: RunTracker;
  /** Its own fetcher: a fetch drops the time bound of the last one, the connection's included. */
  readonly #httpTokens: TokenFetcher;

  constructor(options: AgentSocketClientOptions) {
    super(options?.maxListeners);
    const settings = resolveClientOptions(options);
    this.#options = options;
    this.#settings = settings;
    this.#httpTokens = new TokenFetcher(options.token);
    this.#runs = new RunTracker(settings.runsLimit, {
      changed: (run) => this.emit('run', run),
      stale: (runId) => void this.#refreshRun(runId),
    });
    this.#connection = new ClientConnection(
      options,
      settings,
      (name, payload) => this.emit(name, payload),
      this.#runs,
    );
  }

  /**
   * The user's runs, runId → snapshot, folded from `run_snapshot` frames,
   * `fetchRuns` and the events as they arrive (protocol 1.1). At most
   * `runsLimit`; updated in place (see the `run` event).
   */
  get runs(): ReadonlyMap<string, RunSnapshot> {
    return this.#runs.runs;
  }

  /**
   * The user's recent runs from the gateway (`GET /v1/runs`, with a token of
   * the token provider), newest first, merged into `runs` (a `run` event for
   * each that changed). Call it before `connect()` to draw a page's
   * conversation on load; the events that follow are not folded twice.
   * Rejects with `RunsRequestError` (status, code) or `RangeError` for a bad limit.
   */
  async fetchRuns(options: FetchRunsOptions = {}): Promise<RunSnapshot[]> {
    const runs = await requestRuns(await this.#request(), options.limit ?? DEFAULT_FETCH_RUNS);
    this.#runs.merge(runs, this.#connection.cursor?.epoch ?? null, this.#connection.recent);
    return runs;
  }

  /** One run from the gateway (`GET /v1/runs/{runId}`), merged into `runs`; null when unknown. */
  async fetchRun(runId: string): Promise<RunSnapshot | null> {
    const run = await requestRun(await this.#request(), runId);
    if (run !== null) {
      this.#runs.merge([run], this.#connection.cursor?.epoch ?? null, this.#connection.recent);
    }
    return run;
  }

  get state(): ClientState {
    return this.#connection.state;
  }

  /**
   * The transport of the connections: `websocket`, or `sse` once the client
   * fell back to Server-Sent Events (option `sse`; the `transport` event).
   */
  get transport(): TransportKind {
    return this.#connection.transport;
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

  /**
   * Listens to one event by name, with its `data` typed: the agent events,
   * and the app's own events declared by `E`. Returns the unsubscribe function.
   */
  onEvent<K extends KnownEventName<E>>(
    name: K,
    listener: (event: TypedEventFrame<E, K>) => void,
  ): () => void {
    const needsRun = isAgentEventName(name);
    return this.on('event', (event) => {
      // The gateway validated an agent event's `data` at publish; the app's own
      // events are as its publisher typed them (the same map).
      if (event.event === name && (!needsRun || event.runId !== undefined)) {
        listener(event as unknown as TypedEventFrame<E, K>);
      }
    });
  }

  /**
   * The first event of run `runId` (named `event`, if given): from the recent
   * events, else the next one to arrive. Rejects with `WaitTimeoutError` after
   * `timeoutMs` (default 30 s), `ClientClosedError` if the client stops.
   */
  waitForEvent<K extends KnownEventName<E>>(
    runId: string,
    event: K,
    options?: WaitForEventOptions,
  ): Promise<TypedEventFrame<E, K>>;
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

  async #request(): Promise<RunsRequest> {
    const { url } = this.#options;
    const base =
      this.#options.httpUrl ?? httpBaseFromSocketUrl(typeof url === 'string' ? url : url());
    if (this.#options.fetch === undefined && typeof globalThis.fetch !== 'function') {
      throw new TypeError('no fetch: pass option fetch');
    }
    // Called through globalThis: a browser's fetch throws "Illegal invocation" on another `this`.
    const fetchImpl: FetchLike =
      this.#options.fetch ?? ((url, init) => globalThis.fetch(url, init));
    const token = await this.#httpTokens.fetchWithin(this.#settings.connectTimeoutMs);
    return { base, token, fetch: fetchImpl, timeoutMs: this.#settings.connectTimeoutMs };
  }

  /** A merged delta straddled a fetched snapshot (see run-tracker.ts): a fresh one replaces it. */
  async #refreshRun(runId: string): Promise<void> {
    try {
      if ((await this.fetchRun(runId)) !== null) return;
    } catch (cause) {
      this.#connection.reportError({
        kind: 'transport',
        message: `could not refresh run ${runId}`,
        cause,
      });
    }
    this.#runs.refreshFailed(runId);
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
