/**
 * Which transport the client opens its next connection with: a WebSocket,
 * or Server-Sent Events (`sse-socket.ts`) when the WebSocket cannot open.
 *
 * The fallback rule: the environment has no WebSocket (none given, no
 * global one, no `ws` package), the WebSocket constructor throws, or
 * `FALLBACK_AFTER_FAILED_OPENS` attempts in a row ended before a welcome
 * (a proxy that blocks upgrades, a network that drops them). An attempt the
 * gateway refused with one of its handshake statuses (401, 403, 429, 503)
 * does not count where the WebSocket says so (`ws` in Node); a browser's
 * WebSocket cannot tell a refusal from a blocked upgrade, so there every
 * failure before the welcome counts. From then
 * on the client stays on SSE until it is closed and started again. Only with
 * option `sse` (default true) and a `fetch` in the environment.
 */
import { socketUrl, createSocket } from './client-socket.js';
import type { ResolvedClientOptions } from './client-options.js';
import type { AgentSocketClientOptions, TransportChange, TransportKind } from './client-types.js';
import { httpBaseFromSocketUrl } from './runs-api.js';
import type { StreamCursor } from './seq-tracker.js';
import { SseSocket, type StreamFetch } from './sse-socket.js';
import { resolveWebSocket, type WebSocketLike } from './websocket-like.js';

/** WebSocket attempts in a row that end before their welcome, after which the client uses SSE. */
export const FALLBACK_AFTER_FAILED_OPENS = 2;

/** Handshake statuses of the gateway's own refusals (docs/protocol.md, "Refusals"). */
const GATEWAY_REFUSALS = new Set(['401', '403', '429', '503']);

export class TransportChooser {
  readonly #options: AgentSocketClientOptions;
  readonly #settings: ResolvedClientOptions;
  readonly #changed: (change: TransportChange) => void;
  #kind: TransportKind = 'websocket';
  #failedOpens = 0;
  /** The current attempt's handshake was refused by the gateway. */
  #refused = false;

  constructor(
    options: AgentSocketClientOptions,
    settings: ResolvedClientOptions,
    changed: (change: TransportChange) => void,
  ) {
    this.#options = options;
    this.#settings = settings;
    this.#changed = changed;
  }

  get kind(): TransportKind {
    return this.#kind;
  }

  /** The client starts again: the WebSocket first. */
  reset(): void {
    this.#kind = 'websocket';
    this.#failedOpens = 0;
  }

  /** A connection got its welcome. */
  opened(): void {
    this.#failedOpens = 0;
  }

  /** An error of the current socket: `ws` names the status of a refused handshake. */
  noteError(message: string): void {
    const status = /^Unexpected server response: (\d{3})$/.exec(message)?.[1];
    if (status !== undefined && GATEWAY_REFUSALS.has(status)) this.#refused = true;
  }

  /** An attempt ended before its welcome. */
  failedBeforeOpen(): void {
    const refused = this.#refused;
    this.#refused = false;
    if (this.#kind !== 'websocket' || refused) return;
    this.#failedOpens++;
    if (this.#failedOpens >= FALLBACK_AFTER_FAILED_OPENS && this.#canFallBack()) {
      this.#switch(`${this.#failedOpens} WebSocket attempts in a row ended before their welcome`);
    }
  }

  /**
   * A new socket of the current transport, carrying `token` and resuming
   * from `cursor`; rejects with a `TransportOpenError` (fatal: no transport
   * at all).
   */
  async open(token: string, cursor: StreamCursor | null): Promise<WebSocketLike> {
    try {
      return await this.#open(token, cursor);
    } catch (cause) {
      if (cause instanceof TransportOpenError) throw cause;
      const message =
        cause instanceof TypeError && /option url/.test(cause.message)
          ? cause.message
          : 'could not create the WebSocket';
      throw new TransportOpenError(message, cause, false);
    }
  }

  async #open(token: string, cursor: StreamCursor | null): Promise<WebSocketLike> {
    this.#refused = false;
    if (this.#kind === 'sse') return this.#sse(token, cursor);
    const { auth, snapshots } = this.#settings;
    let Ctor;
    try {
      Ctor = await resolveWebSocket(this.#options.WebSocket, auth === 'header');
    } catch (cause) {
      if (!this.#canFallBack()) throw new TransportOpenError((cause as Error).message, cause, true);
      this.#switch('no WebSocket in this environment');
      return this.#sse(token, cursor);
    }
    const url = socketUrl(this.#options.url, cursor, snapshots);
    try {
      return createSocket(Ctor, url, auth, token);
    } catch (cause) {
      if (!this.#canFallBack()) throw cause;
      this.#switch(`the WebSocket constructor threw: ${(cause as Error).message}`);
      return this.#sse(token, cursor);
    }
  }

  #canFallBack(): boolean {
    return this.#settings.sse && typeof globalThis.fetch === 'function';
  }

  #switch(reason: string): void {
    this.#kind = 'sse';
    this.#changed({ transport: 'sse', reason });
  }

  #sse(token: string, cursor: StreamCursor | null): WebSocketLike {
    const { url, httpUrl } = this.#options;
    const base = httpUrl ?? httpBaseFromSocketUrl(typeof url === 'string' ? url : url());
    // Called through globalThis: a browser's fetch throws "Illegal invocation" on another `this`.
    const fetch: StreamFetch = (target, init) => globalThis.fetch(target, init);
    return new SseSocket({ base, token, cursor, snapshots: this.#settings.snapshots, fetch });
  }
}

/** An attempt could not open a socket; `fatal`: neither a WebSocket nor SSE can be had. */
export class TransportOpenError extends Error {
  constructor(
    message: string,
    override readonly cause: unknown,
    readonly fatal: boolean,
  ) {
    super(message, { cause });
    this.name = 'TransportOpenError';
  }
}
