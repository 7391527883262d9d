/**
 * The connection engine behind `AgentSocketClient`: one socket at a time,
 * kept alive across drops. It opens a socket with a fresh token, resumes from
 * the cursor, drops duplicates by seq, acks, answers heartbeats, refreshes the
 * token before it expires, and follows the close-code table on when to stop
 * or reconnect. It tells the client what happened through `emit`.
 *
 * Every socket callback checks that its socket is still the current one:
 * callbacks of a socket the connection has left behind are ignored.
 */
import { CloseCode, reconnectAdvice } from '../protocol/close-codes.js';
import { decodeServerFrame, encodeFrame } from '../protocol/codec.js';
import type { ClientFrame, EventFrame, ServerFrame, WelcomeFrame } from '../protocol/frames.js';
import { AckScheduler } from './ack-scheduler.js';
import { exponentialBackoff } from './backoff.js';
import type { ResolvedClientOptions } from './client-options.js';
import { detach, listen } from './client-socket.js';
import { MAX_TIMER_DELAY_MS, SilenceWatchdog } from './client-timers.js';
import type {
  AgentSocketClientOptions,
  ClientError,
  ClientEventMap,
  ClientState,
  ClosedInfo,
  TransportKind,
} from './client-types.js';
import { CursorStore } from './cursor-store.js';
import { ReconnectScheduler } from './reconnect-scheduler.js';
import type { RunTracker } from './run-tracker.js';
import { SeqTracker } from './seq-tracker.js';
import type { StreamCursor } from './seq-tracker.js';
import { TokenFetcher } from './token-fetcher.js';
import { TokenRefresher } from './token-refresher.js';
import { TransportChooser, type TransportOpenError } from './transport-chooser.js';
import { WS_OPEN } from './websocket-like.js';
import type { WebSocketLike } from './websocket-like.js';

/** Close code the client uses when it leaves a socket on its own (dead, timed out, reconnect). */
const CLIENT_RECONNECT_CLOSE = CloseCode.ClientReconnect;

/** How the connection tells its client what happened (the client's `emit`). */
export type EmitClientEvent = <K extends keyof ClientEventMap>(
  name: K,
  payload: ClientEventMap[K],
) => void;

export class ClientConnection {
  readonly #options: AgentSocketClientOptions;
  readonly #emit: EmitClientEvent;
  readonly #settings: ResolvedClientOptions;
  readonly #tokens: TokenFetcher;
  readonly #refresher: TokenRefresher;
  readonly #cursorStore: CursorStore;
  readonly #watchdog = new SilenceWatchdog();
  readonly #tracker: SeqTracker;
  readonly #reconnect: ReconnectScheduler;
  readonly #recent: EventFrame[] = [];
  readonly #transports: TransportChooser;

  #state: ClientState = 'closed';
  /** Bumped whenever the current connection attempt is abandoned; stale async work checks it. */
  #generation = 0;
  #socket: WebSocketLike | null = null;
  #acks: AckScheduler | null = null;
  #welcome: WelcomeFrame | null = null;
  #lastHeard = 0;
  #silenceMs: number;
  /** Resets the reconnect attempt count once a connection has stayed open one heartbeat. */
  #stableTimer: ReturnType<typeof setTimeout> | undefined;
  #lastClose: { code: number; reason: string } = { code: CloseCode.AbnormalClosure, reason: '' };
  #duplicates = 0;

  readonly #runs: RunTracker;

  constructor(
    options: AgentSocketClientOptions,
    settings: ResolvedClientOptions,
    emit: EmitClientEvent,
    runs: RunTracker,
  ) {
    this.#options = options;
    this.#runs = runs;
    this.#settings = settings;
    this.#emit = emit;
    this.#tokens = new TokenFetcher(options.token);
    this.#refresher = new TokenRefresher(
      this.#tokens,
      this.#settings.refreshLeadMs,
      this.#settings.connectTimeoutMs,
      {
        isCurrent: (socket) => socket === this.#socket,
        send: (token) => this.#send({ type: 'refresh', token }),
        failed: (cause) =>
          this.#emitError({ kind: 'token', message: 'the token provider failed', cause }),
      },
    );
    this.#cursorStore = new CursorStore(
      this.#settings.storage,
      this.#settings.storageKey,
      (error) => this.#emitError(error),
    );
    this.#silenceMs = this.#settings.defaultHeartbeatTimeoutMs;
    this.#reconnect = new ReconnectScheduler(
      options.backoff ?? exponentialBackoff(),
      options.random ?? Math.random,
    );
    this.#tracker = new SeqTracker(this.#cursorStore.load());
    this.#transports = new TransportChooser(options, settings, (change) =>
      this.#emit('transport', change),
    );
  }

  /** The transport of the connections: `websocket`, or `sse` after a fallback. */
  get transport(): TransportKind {
    return this.#transports.kind;
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

  /** Events dropped as duplicates since the connection was created. */
  get duplicatesDropped(): number {
    return this.#duplicates;
  }

  /** The last events delivered (at most `recentEventsLimit`), oldest first. */
  get recent(): readonly EventFrame[] {
    return this.#recent;
  }

  /** Starts connecting, from `closed` only. */
  start(): void {
    if (this.#state !== 'closed') return;
    this.#reconnect.reset();
    this.#transports.reset();
    this.#setState('connecting');
    void this.#open();
  }

  /** Acks what was received, closes with 1000 and stays closed until `start()`. */
  close(): void {
    if (this.#state === 'closed') return;
    this.#acks?.flush();
    this.#finish(
      { code: CloseCode.Normal, reason: 'client closed', advice: 'stop' },
      CloseCode.Normal,
    );
  }

  /** Leaves the current socket as if the network dropped it, and reconnects with backoff. */
  reconnect(): void {
    if (this.#state === 'closed') return;
    this.#abandonSocket(CLIENT_RECONNECT_CLOSE, 'client reconnect');
    this.#lastClose = { code: CLIENT_RECONNECT_CLOSE, reason: 'client reconnect' };
    this.#scheduleReconnect();
  }

  /** Reports an error of the client's own (a listener threw) as an `error` event. */
  reportError(error: ClientError): void {
    this.#emitError(error);
  }

  // ---- connection lifecycle ----

  async #open(): Promise<void> {
    const generation = ++this.#generation;
    let token: string;
    try {
      token = await this.#tokens.fetchWithin(this.#settings.connectTimeoutMs);
    } catch (cause) {
      if (generation !== this.#generation) return;
      this.#emitError({ kind: 'token', message: 'the token provider failed', cause });
      this.#scheduleReconnect();
      return;
    }
    if (generation !== this.#generation) return;
    let socket: WebSocketLike;
    try {
      socket = await this.#transports.open(token, this.#tracker.cursor());
    } catch (error) {
      if (generation !== this.#generation) return;
      const { message, cause, fatal } = error as TransportOpenError;
      this.#emitError({ kind: 'transport', message, cause });
      if (!fatal) this.#scheduleReconnect();
      else this.#finish({ code: CloseCode.AbnormalClosure, reason: message, advice: 'stop' }, null);
      return;
    }
    if (generation !== this.#generation) {
      detach(socket, CloseCode.Normal, 'client moved on');
      return;
    }
    this.#refresher.token = token;
    this.#socket = socket;
    // The cursor is persisted at each delivery (#onEvent), not with the batched acks.
    this.#acks = new AckScheduler((seq) => this.#send({ type: 'ack', seq }), this.#options.ack);
    this.#lastHeard = Date.now();
    // Until the welcome names the heartbeat, the connect timeout bounds the silence.
    this.#armWatchdog(this.#settings.connectTimeoutMs);
    listen(socket, () => socket === this.#socket, {
      message: (data) => this.#onMessage(data),
      error: (message) => {
        this.#transports.noteError(message);
        this.#emitError({ kind: 'transport', message });
      },
      close: (code, reason) => this.#onSocketClosed(code, reason),
    });
  }

  #onSocketClosed(code: number, reason: string): void {
    if (this.#welcome === null) this.#transports.failedBeforeOpen();
    this.#abandonSocket();
    this.#lastClose = { code, reason };
    const advice = reconnectAdvice(code);
    if (advice === 'stop') {
      this.#finish({ code, reason, advice }, null);
    } else if (advice === 'refresh-token' && this.#tokens.fixed) {
      // A fixed token cannot be renewed: reconnecting with it would be refused again.
      this.#finish({ code, reason, advice }, null);
    } else {
      // `refresh-token`: the next attempt calls the token provider, as every attempt does.
      this.#scheduleReconnect();
    }
  }

  #scheduleReconnect(): void {
    if (this.#reconnect.attempt >= this.#settings.maxReconnectAttempts) {
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

  /** Leaves the current socket (closed with `closeCode` when given) and drops every per-connection timer. */
  #abandonSocket(closeCode: number | null = null, reason = ''): void {
    this.#generation++;
    const socket = this.#socket;
    this.#socket = null;
    this.#welcome = null;
    this.#acks?.dispose();
    this.#acks = null;
    this.#watchdog.stop();
    this.#tokens.cancel();
    this.#refresher.stop();
    clearTimeout(this.#stableTimer);
    this.#stableTimer = undefined;
    if (socket) detach(socket, closeCode, reason);
  }

  /** Stops for good: no socket, no timer, state `closed`, a `closed` event. */
  #finish(info: ClosedInfo, closeCode: number | null): void {
    this.#abandonSocket(closeCode, info.reason);
    this.#reconnect.cancel();
    this.#setState('closed');
    this.#emit('closed', info);
  }

  #setState(state: ClientState): void {
    const previous = this.#state;
    if (previous === state) return;
    this.#state = state;
    this.#emit('state', { state, previous });
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
      case 'run_snapshot':
        if (!this.#welcome) {
          this.#emitError({ kind: 'protocol', message: 'run_snapshot before welcome' });
        } else if (frame.epoch === this.#welcome.epoch) {
          this.#runs.onSnapshotFrame(frame);
        }
        return;
      case 'broadcast':
        this.#emit('broadcast', frame);
        return;
      case 'ping':
        this.#send({ type: 'pong' });
        return;
      case 'pong':
        return;
      case 'refreshed':
        this.#refresher.plan(this.#socket);
        this.#emit('refreshed', frame);
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
    const outcome = this.#tracker.onWelcome(welcome.epoch, welcome.replay.from);
    // Events of an old epoch have seqs that mean nothing in the new one.
    if (outcome === 'new-epoch') this.#recent.length = 0;
    this.#welcome = welcome;
    this.#transports.opened();
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
    this.#cursorStore.save(this.#tracker.cursor());
    // Planned before the emits, which may close or reconnect (that drops it again).
    this.#refresher.plan(socket);
    // A listener may close or reconnect: stop once this socket is no longer the current one.
    this.#setState('open');
    if (socket !== this.#socket) return;
    this.#emit('welcome', welcome);
    if (socket !== this.#socket) return;
    if (welcome.replay.gap || outcome === 'new-epoch') {
      this.#emit('gap', {
        epoch: welcome.epoch,
        from: welcome.replay.from,
        lastSeq: before?.lastSeq ?? null,
        newEpoch: outcome === 'new-epoch',
      });
    }
  }

  #onEvent(frame: EventFrame): void {
    const acks = this.#acks;
    if (frame.seqFrom !== undefined && this.#tracker.overlaps(frame.seqFrom, frame.seq)) {
      // Part delivered, part not (see SeqTracker.overlaps): resume from the cursor instead.
      this.#emitError({
        kind: 'protocol',
        message: `merged event ${frame.seqFrom}..${frame.seq} overlaps delivered seq ${this.#tracker.lastSeq}`,
      });
      this.reconnect();
      return;
    }
    if (this.#tracker.accept(frame.seq)) {
      this.#recent.push(frame);
      if (this.#recent.length > this.#settings.recentLimit) this.#recent.shift();
      // Persisted before the app sees it (the tracker already counts it as
      // delivered): a reload never resumes from before an event the app was given.
      this.#cursorStore.save(this.#tracker.cursor());
      this.#emit('event', frame);
      this.#runs.onEvent(frame, this.#tracker.epoch!);
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

  // ---- watchdog and errors ----

  /** Drops the connection when nothing was heard for `silenceMs` (checked against `#lastHeard`). */
  #armWatchdog(silenceMs: number): void {
    this.#watchdog.arm(
      silenceMs,
      () => this.#lastHeard,
      (silent) => {
        const reason = this.#welcome ? 'heartbeat timeout' : 'connect timeout';
        if (this.#welcome === null) this.#transports.failedBeforeOpen();
        this.#emitError({
          kind: 'transport',
          message: `${reason}: nothing heard for ${silent} ms`,
        });
        this.#abandonSocket(CLIENT_RECONNECT_CLOSE, reason);
        this.#lastClose = { code: CLIENT_RECONNECT_CLOSE, reason };
        this.#scheduleReconnect();
      },
    );
  }

  #emitError(error: ClientError): void {
    this.#emit('error', error);
  }
}
