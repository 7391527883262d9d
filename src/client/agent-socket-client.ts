/**
 * `AgentSocketClient`: one user's connection to the gateway, kept alive across
 * drops. It authenticates, resumes from its cursor after a reconnect, drops
 * duplicates by seq, acks, answers heartbeats, refreshes its token before it
 * expires, and follows the close-code table on when to stop.
 *
 * Every socket callback checks that its socket is still the current one:
 * callbacks of a socket the client has left behind are ignored.
 */
import { isAgentEventName } from '../protocol/agent-events.js';
import type { AgentEventName } from '../protocol/agent-events.js';
import { CloseCode, reconnectAdvice } from '../protocol/close-codes.js';
import { MAX_TOKEN_LENGTH, decodeServerFrame, encodeFrame } from '../protocol/codec.js';
import { BEARER_SUBPROTOCOL_PREFIX, SUBPROTOCOL } from '../protocol/frames.js';
import type { ClientFrame, EventFrame, ServerFrame, WelcomeFrame } from '../protocol/frames.js';
import { AckScheduler } from './ack-scheduler.js';
import { exponentialBackoff } from './backoff.js';
import { ClientClosedError, WaitTimeoutError } from './client-errors.js';
import type {
  AgentEvent,
  AgentEventFrame,
  AgentSocketClientOptions,
  AuthMode,
  ClientError,
  ClientEventMap,
  ClientState,
  ClosedInfo,
} from './client-types.js';
import { DEFAULT_CURSOR_STORAGE_KEY, loadCursor, saveCursor } from './cursor-storage.js';
import type { StorageLike } from './cursor-storage.js';
import { jwtExpiresAt } from './jwt-expiry.js';
import { ReconnectScheduler } from './reconnect-scheduler.js';
import { followRun } from './run-follower.js';
import type { FollowRunOptions } from './run-follower.js';
import { SeqTracker } from './seq-tracker.js';
import type { StreamCursor } from './seq-tracker.js';
import { TypedEmitter } from './typed-emitter.js';
import { WS_OPEN, isNodeRuntime, resolveWebSocket } from './websocket-like.js';
import type { WebSocketConstructorLike, WebSocketLike } from './websocket-like.js';

/** Close code the client uses when it leaves a socket on its own (dead, timed out, reconnect). */
const CLIENT_RECONNECT_CLOSE = CloseCode.ClientReconnect;
/** Refreshes never come closer together than this, whatever the token's lifetime. */
const MIN_REFRESH_DELAY_MS = 1000;
/** setTimeout's longest delay (2^31-1 ms, about 24.8 days); a longer one fires after 1 ms. */
const MAX_TIMER_DELAY_MS = 2_147_483_647;

export interface WaitForEventOptions {
  /** Default 30 000 ms. */
  timeoutMs?: number;
  /** Look at the recent events first. Default true. */
  includeRecent?: boolean;
  signal?: AbortSignal;
}

function noop(): void {}

/** Parses the gateway URL; throws a TypeError naming the `url` option when it is not absolute ws:/wss:. */
function parseSocketUrl(value: unknown): URL {
  if (typeof value !== 'string') throw new TypeError('option url must give a string');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError('option url must be an absolute ws: or wss: URL');
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new TypeError(`option url must use ws: or wss:, got ${url.protocol}`);
  }
  return url;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || Number.isNaN(v) || v <= 0) {
    throw new TypeError(`option ${name} must be a positive number, got ${String(v)}`);
  }
  return v;
}

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
  readonly #options: AgentSocketClientOptions;
  readonly #auth: AuthMode;
  readonly #storage: StorageLike | undefined;
  readonly #storageKey: string;
  readonly #refreshLeadMs: number;
  readonly #connectTimeoutMs: number;
  readonly #maxReconnectAttempts: number;
  readonly #recentLimit: number;
  readonly #tracker: SeqTracker;
  readonly #reconnect: ReconnectScheduler;
  readonly #recent: EventFrame[] = [];

  #state: ClientState = 'closed';
  /** Bumped whenever the current connection attempt is abandoned; stale async work checks it. */
  #generation = 0;
  #socket: WebSocketLike | null = null;
  #acks: AckScheduler | null = null;
  #welcome: WelcomeFrame | null = null;
  #token: string | null = null;
  #lastHeard = 0;
  #silenceMs: number;
  #watchdog: ReturnType<typeof setTimeout> | undefined;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  /** Bounds a token fetch (connect or refresh); a provider that never answers must not stall. */
  #tokenTimer: ReturnType<typeof setTimeout> | undefined;
  /** Resets the reconnect attempt count once a connection has stayed open one heartbeat. */
  #stableTimer: ReturnType<typeof setTimeout> | undefined;
  #lastClose: { code: number; reason: string } = { code: CloseCode.AbnormalClosure, reason: '' };
  #duplicates = 0;

  constructor(options: AgentSocketClientOptions) {
    super(options?.maxListeners);
    if (!options || (typeof options.url !== 'string' && typeof options.url !== 'function')) {
      throw new TypeError(
        'option url is required: the gateway WebSocket URL (ws: or wss:), or a function returning one',
      );
    }
    // A fixed URL is checked now; one from a function, at every attempt.
    if (typeof options.url === 'string') parseSocketUrl(options.url);
    if (typeof options.token !== 'string' && typeof options.token !== 'function') {
      throw new TypeError('option token is required: a string or a function returning one');
    }
    const auth = options.auth ?? 'subprotocol';
    if (auth !== 'subprotocol' && auth !== 'header') {
      throw new TypeError('option auth must be "subprotocol" or "header"');
    }
    // A browser's WebSocket cannot send headers: say so now rather than connect without a token.
    if (auth === 'header' && !options.WebSocket && !isNodeRuntime()) {
      throw new TypeError(
        'option auth "header" needs option WebSocket (a constructor taking {headers}, such as ws); browsers use "subprotocol"',
      );
    }
    this.#options = options;
    this.#auth = auth;
    this.#storage = options.storage;
    this.#storageKey = options.storageKey ?? DEFAULT_CURSOR_STORAGE_KEY;
    this.#refreshLeadMs = positive('refreshLeadMs', options.refreshLeadMs, 30_000);
    this.#connectTimeoutMs = positive('connectTimeoutMs', options.connectTimeoutMs, 15_000);
    this.#silenceMs = positive(
      'defaultHeartbeatTimeoutMs',
      options.defaultHeartbeatTimeoutMs,
      60_000,
    );
    this.#maxReconnectAttempts = positive(
      'maxReconnectAttempts',
      options.maxReconnectAttempts,
      Infinity,
    );
    this.#recentLimit = positive('recentEventsLimit', options.recentEventsLimit, 256);
    this.#reconnect = new ReconnectScheduler(
      options.backoff ?? exponentialBackoff(),
      options.random ?? Math.random,
    );
    this.#tracker = new SeqTracker(this.#readStoredCursor());
  }

  get state(): ClientState {
    return this.#state;
  }

  /** The resume cursor: the stream's epoch and the last seq delivered to the app. */
  get cursor(): StreamCursor | null {
    return this.#tracker.cursor();
  }

  /** The welcome of the open connection; null while not open. */
  get welcome(): WelcomeFrame | null {
    return this.#welcome;
  }

  /** Reconnect attempts since a connection last stayed open one heartbeat interval. */
  get reconnectAttempt(): number {
    return this.#reconnect.attempt;
  }

  /** Events dropped as duplicates since the client was created. */
  get duplicatesDropped(): number {
    return this.#duplicates;
  }

  /** The last events delivered (at most `recentEventsLimit`), oldest first. */
  recentEvents(): readonly EventFrame[] {
    return this.#recent;
  }

  /**
   * Starts connecting (from `closed`); resolves with the next `welcome`, rejects
   * with `ClientClosedError` if the client stops first. While open, resolves at once.
   */
  connect(): Promise<WelcomeFrame> {
    if (this.#state === 'open' && this.#welcome) return Promise.resolve(this.#welcome);
    let resolveOpened: (welcome: WelcomeFrame) => void = noop;
    let rejectOpened: (error: Error) => void = noop;
    const opened = new Promise<WelcomeFrame>((resolve, reject) => {
      resolveOpened = resolve;
      rejectOpened = reject;
    });
    // Registered outside the executor: when `once` throws (listener limit), the
    // first listener is undone and the client does not start connecting.
    let offClosed = noop;
    const offWelcome = this.once('welcome', (welcome) => {
      offClosed();
      resolveOpened(welcome);
    });
    try {
      offClosed = this.once('closed', (info) => {
        offWelcome();
        rejectOpened(new ClientClosedError(info));
      });
    } catch (error) {
      offWelcome();
      return Promise.reject(error);
    }
    if (this.#state === 'closed') {
      this.#reconnect.reset();
      this.#setState('connecting');
      void this.#open();
    }
    return opened;
  }

  /** Acks what was received, closes with 1000 and stays closed until `connect()`. */
  close(): void {
    if (this.#state === 'closed') return;
    this.#acks?.flush();
    this.#finish(
      { code: CloseCode.Normal, reason: 'client closed', advice: 'stop' },
      CloseCode.Normal,
    );
  }

  /**
   * Leaves the current socket as if the network dropped it, and reconnects
   * with backoff, resuming from the cursor. For tests and "reconnect" buttons.
   */
  reconnect(): void {
    if (this.#state === 'closed') {
      void this.connect().catch(noop);
      return;
    }
    this.#abandonSocket(CLIENT_RECONNECT_CLOSE, 'client reconnect');
    this.#lastClose = { code: CLIENT_RECONNECT_CLOSE, reason: 'client reconnect' };
    this.#scheduleReconnect();
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
    const matches = (e: EventFrame): boolean =>
      e.runId === runId && (event === undefined || e.event === event);
    if (options.includeRecent !== false) {
      const found = this.#recent.find(matches);
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
        offEvent = this.on('event', (e) => {
          if (!matches(e)) return;
          cleanup();
          resolve(e);
        });
        offClosed = this.on('closed', (info) => {
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
   * Follows run `runId` from the events already received to `agent_completed`.
   *
   * @example
   * for await (const e of client.run(runId)) if (e.event === 'agent_thinking') show(e.data);
   */
  run(runId: string, options?: FollowRunOptions): AsyncGenerator<EventFrame, void, undefined> {
    return followRun(this, runId, options);
  }

  // ---- connection lifecycle ----

  async #open(): Promise<void> {
    const generation = ++this.#generation;
    let token: string;
    try {
      token = await this.#fetchTokenWithin(this.#connectTimeoutMs);
    } catch (cause) {
      if (generation !== this.#generation) return;
      this.#emitError({ kind: 'token', message: 'the token provider failed', cause });
      this.#scheduleReconnect();
      return;
    }
    let Ctor: WebSocketConstructorLike;
    try {
      Ctor = await resolveWebSocket(this.#options.WebSocket, this.#auth === 'header');
    } catch (cause) {
      if (generation !== this.#generation) return;
      this.#emitError({ kind: 'transport', message: (cause as Error).message, cause });
      this.#finish(
        { code: CloseCode.AbnormalClosure, reason: 'no WebSocket implementation', advice: 'stop' },
        CloseCode.Normal,
      );
      return;
    }
    if (generation !== this.#generation) return;
    this.#token = token;
    let socket: WebSocketLike;
    try {
      const url = this.#connectUrl();
      socket =
        this.#auth === 'header'
          ? new Ctor(url, [], { headers: { Authorization: `Bearer ${token}` } })
          : new Ctor(url, [SUBPROTOCOL, `${BEARER_SUBPROTOCOL_PREFIX}${token}`]);
    } catch (cause) {
      const message =
        cause instanceof TypeError && /option url/.test(cause.message)
          ? cause.message
          : 'could not create the WebSocket';
      this.#emitError({ kind: 'transport', message, cause });
      this.#scheduleReconnect();
      return;
    }
    this.#socket = socket;
    // The cursor is persisted at each delivery (#onEvent), not with the batched acks.
    this.#acks = new AckScheduler((seq) => this.#send({ type: 'ack', seq }), this.#options.ack);
    this.#lastHeard = Date.now();
    // Until the welcome names the heartbeat, the connect timeout bounds the silence.
    this.#armWatchdog(this.#connectTimeoutMs);
    socket.onopen = noop;
    socket.onmessage = (event) => {
      if (socket === this.#socket) this.#onMessage(event.data);
    };
    socket.onerror = (event) => {
      if (socket !== this.#socket) return;
      const message = (event as { message?: unknown } | null)?.message;
      this.#emitError({
        kind: 'transport',
        message: typeof message === 'string' ? message : 'WebSocket error',
      });
    };
    socket.onclose = (event) => {
      if (socket === this.#socket) this.#onSocketClosed(event.code, event.reason);
    };
  }

  /** The URL of the next attempt, with the cursor; throws a TypeError when `url` gives a bad one. */
  #connectUrl(): string {
    const source = this.#options.url;
    const url = parseSocketUrl(typeof source === 'string' ? source : source());
    url.searchParams.delete('lastSeq');
    url.searchParams.delete('epoch');
    const cursor = this.#tracker.cursor();
    if (cursor) {
      url.searchParams.set('lastSeq', String(cursor.lastSeq));
      url.searchParams.set('epoch', cursor.epoch);
    }
    return url.toString();
  }

  /**
   * `#fetchToken`, rejected after `timeoutMs`: a provider that never answers
   * counts as a failed one. The timer is `#tokenTimer`, dropped by
   * `#abandonSocket` and `#finish`, so a closed client keeps no timer.
   */
  #fetchTokenWithin(timeoutMs: number): Promise<string> {
    clearTimeout(this.#tokenTimer);
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.#tokenTimer === timer) this.#tokenTimer = undefined;
        reject(new Error(`the token provider gave no token within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#tokenTimer = timer;
      const done = (): void => {
        clearTimeout(timer);
        if (this.#tokenTimer === timer) this.#tokenTimer = undefined;
      };
      this.#fetchToken().then(
        (token) => {
          done();
          resolve(token);
        },
        (cause: unknown) => {
          done();
          reject(cause);
        },
      );
    });
  }

  async #fetchToken(): Promise<string> {
    const source = this.#options.token;
    const token = typeof source === 'string' ? source : await source();
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
      throw new TypeError(`the token must be a non-empty string of at most ${MAX_TOKEN_LENGTH}`);
    }
    if (/\s/.test(token)) throw new TypeError('the token must not contain whitespace');
    return token;
  }

  #onSocketClosed(code: number, reason: string): void {
    this.#abandonSocket();
    this.#lastClose = { code, reason };
    const advice = reconnectAdvice(code);
    if (advice === 'stop') {
      this.#finish({ code, reason, advice }, null);
    } else if (advice === 'refresh-token' && typeof this.#options.token === 'string') {
      // A fixed token cannot be renewed: reconnecting with it would be refused again.
      this.#finish({ code, reason, advice }, null);
    } else {
      // `refresh-token`: the next attempt calls the token provider, as every attempt does.
      this.#scheduleReconnect();
    }
  }

  #scheduleReconnect(): void {
    if (this.#reconnect.attempt >= this.#maxReconnectAttempts) {
      const { code, reason } = this.#lastClose;
      this.#finish(
        {
          code,
          reason: reason || `gave up after ${this.#reconnect.attempt} attempts`,
          advice: 'stop',
        },
        null,
      );
      return;
    }
    this.#generation++;
    this.#setState('reconnecting');
    this.#reconnect.schedule(() => void this.#open());
  }

  /**
   * Leaves the current socket: detaches its callbacks (no-ops, not null: `ws`
   * throws on an `error` event without a listener), closes it when `closeCode`
   * is given, and drops every per-connection timer.
   */
  #abandonSocket(closeCode: number | null = null, reason = ''): void {
    this.#generation++;
    const socket = this.#socket;
    this.#socket = null;
    this.#welcome = null;
    this.#acks?.dispose();
    this.#acks = null;
    clearTimeout(this.#watchdog);
    clearTimeout(this.#refreshTimer);
    clearTimeout(this.#tokenTimer);
    clearTimeout(this.#stableTimer);
    this.#watchdog = undefined;
    this.#refreshTimer = undefined;
    this.#tokenTimer = undefined;
    this.#stableTimer = undefined;
    if (!socket) return;
    socket.onopen = noop;
    socket.onmessage = noop;
    socket.onerror = noop;
    socket.onclose = noop;
    if (closeCode !== null) {
      try {
        socket.close(closeCode, reason);
      } catch {
        // Already closing or never opened: nothing left to close.
      }
    }
  }

  /** Stops for good: no socket, no timer, state `closed`, a `closed` event. */
  #finish(info: ClosedInfo, closeCode: number | null): void {
    this.#abandonSocket(closeCode, info.reason);
    this.#reconnect.cancel();
    this.#setState('closed');
    this.emit('closed', info);
  }

  #setState(state: ClientState): void {
    const previous = this.#state;
    if (previous === state) return;
    this.#state = state;
    this.emit('state', { state, previous });
  }

  // ---- frames ----

  #onMessage(data: unknown): void {
    this.#lastHeard = Date.now();
    if (typeof data !== 'string') {
      this.#emitError({ kind: 'protocol', message: 'binary frame from the server' });
      return;
    }
    const decoded = decodeServerFrame(data);
    if (!decoded.ok) {
      this.#emitError({ kind: 'protocol', message: decoded.message });
      return;
    }
    this.#onFrame(decoded.frame);
  }

  #onFrame(frame: ServerFrame): void {
    switch (frame.type) {
      case 'welcome':
        this.#onWelcome(frame);
        return;
      case 'event':
        if (!this.#welcome) {
          this.#emitError({ kind: 'protocol', message: 'event before welcome' });
          return;
        }
        this.#onEvent(frame);
        return;
      case 'broadcast':
        this.emit('broadcast', frame);
        return;
      case 'ping':
        this.#send({ type: 'pong' });
        return;
      case 'pong':
        return;
      case 'refreshed':
        this.#scheduleRefresh();
        this.emit('refreshed', frame);
        return;
      case 'error':
        this.#emitError({ kind: 'server', code: frame.code, message: frame.message });
        return;
      default: {
        const unknownFrame: never = frame;
        return unknownFrame;
      }
    }
  }

  #onWelcome(welcome: WelcomeFrame): void {
    const socket = this.#socket;
    const before = this.#tracker.cursor();
    const outcome = this.#tracker.onWelcome(welcome.epoch);
    // Events of an old epoch have seqs that mean nothing in the new one.
    if (outcome === 'new-epoch') this.#recent.length = 0;
    this.#welcome = welcome;
    const heartbeatMs =
      Number.isFinite(welcome.heartbeatMs) && welcome.heartbeatMs > 0 ? welcome.heartbeatMs : null;
    if (heartbeatMs !== null) this.#silenceMs = heartbeatMs * 2;
    this.#armWatchdog(this.#silenceMs);
    // The attempt count goes back to 0 only once this connection has stayed open
    // one heartbeat interval (or half the silence limit without one): a server
    // that welcomes and closes at once (4429, 1012, 4408) keeps backing off.
    clearTimeout(this.#stableTimer);
    this.#stableTimer = setTimeout(
      () => {
        this.#stableTimer = undefined;
        this.#reconnect.reset();
      },
      Math.min(heartbeatMs ?? this.#silenceMs / 2, MAX_TIMER_DELAY_MS),
    );
    this.#persistCursor();
    // Planned before the emits, which may close or reconnect (that drops it again).
    this.#scheduleRefresh();
    // A listener may close or reconnect: stop once this socket is no longer the current one.
    this.#setState('open');
    if (socket !== this.#socket) return;
    this.emit('welcome', welcome);
    if (socket !== this.#socket) return;
    if (welcome.replay.gap || outcome === 'new-epoch') {
      this.emit('gap', {
        epoch: welcome.epoch,
        from: welcome.replay.from,
        lastSeq: before?.lastSeq ?? null,
        newEpoch: outcome === 'new-epoch',
      });
    }
  }

  #onEvent(frame: EventFrame): void {
    const acks = this.#acks;
    if (this.#tracker.accept(frame.seq)) {
      this.#recent.push(frame);
      if (this.#recent.length > this.#recentLimit) this.#recent.shift();
      // Persisted before the app sees it (the tracker already counts it as
      // delivered): a reload never resumes from before an event the app was given.
      this.#persistCursor();
      this.emit('event', frame);
    } else {
      this.#duplicates++;
    }
    // A listener may have closed or dropped the connection; its acks went with it.
    if (acks && acks === this.#acks) acks.received(frame.seq, frame.critical);
  }

  #send(frame: ClientFrame): void {
    const socket = this.#socket;
    if (!socket || socket.readyState !== WS_OPEN) return;
    try {
      socket.send(encodeFrame(frame));
    } catch (cause) {
      this.#emitError({ kind: 'transport', message: `could not send ${frame.type}`, cause });
    }
  }

  // ---- watchdog and token refresh ----

  /** Drops the connection when nothing was heard for `silenceMs` (checked against `#lastHeard`). */
  #armWatchdog(silenceMs: number): void {
    clearTimeout(this.#watchdog);
    const check = (): void => {
      const silent = Date.now() - this.#lastHeard;
      if (silent < silenceMs) {
        this.#watchdog = setTimeout(check, silenceMs - silent);
        return;
      }
      this.#watchdog = undefined;
      const reason = this.#welcome ? 'heartbeat timeout' : 'connect timeout';
      this.#emitError({ kind: 'transport', message: `${reason}: nothing heard for ${silent} ms` });
      this.#abandonSocket(CLIENT_RECONNECT_CLOSE, reason);
      this.#lastClose = { code: CLIENT_RECONNECT_CLOSE, reason };
      this.#scheduleReconnect();
    };
    this.#watchdog = setTimeout(check, silenceMs);
  }

  /**
   * Plans the next `refresh` frame `refreshLeadMs` before the token's `exp`
   * (at most half its remaining life, at least 1 s away). A fixed string token
   * or one without `exp` is never refreshed.
   */
  #scheduleRefresh(): void {
    clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
    const socket = this.#socket;
    // No socket (closed or between attempts): nothing to refresh, and no timer to leak.
    if (!socket) return;
    if (typeof this.#options.token === 'string' || this.#token === null) return;
    const expiresAt = jwtExpiresAt(this.#token);
    if (expiresAt === null) return;
    const remaining = expiresAt - Date.now();
    const delay = Math.max(
      MIN_REFRESH_DELAY_MS,
      remaining - Math.min(this.#refreshLeadMs, remaining / 2),
    );
    // Past setTimeout's limit the timer would fire at once: wait the longest
    // allowed delay, then plan again from the clock instead of refreshing.
    const capped = delay > MAX_TIMER_DELAY_MS;
    this.#refreshTimer = setTimeout(
      () => {
        this.#refreshTimer = undefined;
        if (socket !== this.#socket) return;
        if (capped) this.#scheduleRefresh();
        else void this.#refresh(socket);
      },
      capped ? MAX_TIMER_DELAY_MS : delay,
    );
  }

  async #refresh(socket: WebSocketLike): Promise<void> {
    let token: string;
    try {
      token = await this.#fetchTokenWithin(this.#connectTimeoutMs);
    } catch (cause) {
      // The client closed or moved on while the provider ran: no retry for a socket left behind.
      if (socket !== this.#socket) return;
      this.#emitError({ kind: 'token', message: 'the token provider failed', cause });
      this.#scheduleRefresh();
      return;
    }
    if (socket !== this.#socket) return;
    this.#token = token;
    this.#send({ type: 'refresh', token });
  }

  // ---- storage and errors ----

  #readStoredCursor(): StreamCursor | null {
    if (!this.#storage) return null;
    try {
      return loadCursor(this.#storage, this.#storageKey);
    } catch (cause) {
      this.#emitError({ kind: 'storage', message: 'could not read the cursor', cause });
      return null;
    }
  }

  #persistCursor(): void {
    const cursor = this.#tracker.cursor();
    if (!this.#storage || !cursor) return;
    try {
      saveCursor(this.#storage, this.#storageKey, cursor);
    } catch (cause) {
      this.#emitError({ kind: 'storage', message: 'could not save the cursor', cause });
    }
  }

  #emitError(error: ClientError): void {
    this.emit('error', error);
  }

  /** A listener threw: reported as an `error` event, unless an `error` listener threw. */
  protected override onListenerError(error: unknown, name: keyof ClientEventMap): void {
    if (name === 'error') {
      super.onListenerError(error, name);
      return;
    }
    this.#emitError({ kind: 'listener', message: `a "${name}" listener threw`, cause: error });
  }
}

/** True when `event` is one of the five agent events; `switch (event.event)` then narrows `data`. */
export function isAgentEvent(event: EventFrame): event is EventFrame & AgentEvent {
  return isAgentEventName(event.event) && typeof event.runId === 'string';
}
