/**
 * The public types of the client SDK: its state, its options and the typed
 * map of what it emits.
 */
import type { AgentEventDataMap, AgentEventName } from '../protocol/agent-events.js';
import type { ReconnectAdvice } from '../protocol/close-codes.js';
import type {
  BroadcastFrame,
  EventFrame,
  RefreshedFrame,
  WelcomeFrame,
} from '../protocol/frames.js';
import type { RunSnapshot } from '../runs/run-types.js';
import type { AckOptions } from './ack-scheduler.js';
import type { BackoffPolicy } from './backoff.js';
import type { StorageLike } from './cursor-storage.js';
import type { FetchLike } from './runs-api.js';
import type { WebSocketConstructorLike } from './websocket-like.js';

/**
 * Where the client is:
 * - `connecting`: the first connection (or the first after `connect()`) is being made;
 * - `open`: a `welcome` arrived, events flow;
 * - `reconnecting`: the connection was lost; the next attempt waits for its backoff or is being made;
 * - `closed`: the app closed it, or the server said to stop (see `closed` events).
 */
export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export const ClientStates = {
  Connecting: 'connecting',
  Open: 'open',
  Reconnecting: 'reconnecting',
  Closed: 'closed',
} as const satisfies Record<string, ClientState>;

/** A WebSocket URL, or a function that picks one before every connection attempt. */
export type UrlSource = string | (() => string);

/** A user token, or a function that fetches a fresh one (called on every connect and refresh). */
export type TokenSource = string | (() => Promise<string> | string);

/**
 * How the token travels:
 * - `subprotocol`: `Sec-WebSocket-Protocol: agentsocket.v1, bearer.<jwt>` (browsers; works everywhere);
 * - `header`: `Authorization: Bearer <jwt>` (needs a constructor that takes `{headers}`, such as `ws`).
 *   Without option `WebSocket`, Node loads `ws` (never the header-less global one) and a browser
 *   throws a TypeError in the constructor.
 */
export type AuthMode = 'subprotocol' | 'header';

export interface AgentSocketClientOptions {
  /**
   * The gateway's WebSocket endpoint, e.g. `wss://example.com/v1/ws`; or a
   * function called before every connection attempt (the first and each
   * reconnect), to move to another node when one is gone. The client adds its
   * resume cursor (`lastSeq`, `epoch`) to whatever URL it gets. A function that
   * throws or returns a bad URL counts as a failed attempt (an `error` of kind
   * `transport`, then backoff).
   *
   * @example
   * const nodes = ['wss://a.example.com/v1/ws', 'wss://b.example.com/v1/ws'];
   * let next = 0;
   * new AgentSocketClient({ url: () => nodes[next++ % nodes.length]!, token });
   */
  url: UrlSource;
  token: TokenSource;
  /** Default `subprotocol`. */
  auth?: AuthMode;
  /** Default: `globalThis.WebSocket`, else the `ws` package; with auth `header`, always `ws` (Node only). */
  WebSocket?: WebSocketConstructorLike;
  /** Reconnect delays. Default `exponentialBackoff()`: full jitter, 500 ms base, 30 s cap. */
  backoff?: BackoffPolicy;
  /** Uniform draws in [0, 1) for the backoff. Default `Math.random`. */
  random?: () => number;
  /** Reconnect attempts in a row before giving up (state `closed`). Default unlimited. */
  maxReconnectAttempts?: number;
  /** Where the resume cursor persists (e.g. `sessionStorage`). Default: memory only. */
  storage?: StorageLike;
  /** Key of the cursor in `storage`. Default `agentsocket.cursor`. */
  storageKey?: string;
  /** Ack batching. Default: 1 s or 100 events; critical events at once. */
  ack?: AckOptions;
  /** Ask for a new token this long before the current one expires. Default 30 000 ms. */
  refreshLeadMs?: number;
  /** From creating a socket to its `welcome`; past it the attempt counts as failed. Default 15 000 ms. */
  connectTimeoutMs?: number;
  /** Silence that means the connection is dead, before the first welcome says otherwise. Default 60 000 ms. */
  defaultHeartbeatTimeoutMs?: number;
  /** Recent events kept for `waitForEvent` and `run` (events that arrived before the call). Default 256. */
  recentEventsLimit?: number;
  /** Listeners per event name. Default 1000. */
  maxListeners?: number;
  /**
   * Ask the gateway for `run_snapshot` frames (handshake parameter
   * `snapshots=1`, protocol 1.1): a run whose start fell out of history, or
   * with many events to replay, comes as one folded snapshot. Default true.
   */
  snapshots?: boolean;
  /** Runs kept in `client.runs`; past it the run added first goes. Default 100. */
  runsLimit?: number;
  /**
   * The HTTP API's base URL for `fetchRuns`/`fetchRun`, e.g.
   * `https://api.example.com`. Default: derived from `url` (`wss:` → `https:`,
   * a path ending in `/v1/ws` loses that end).
   */
  httpUrl?: string;
  /** `fetch` for `fetchRuns`/`fetchRun`. Default `globalThis.fetch`. */
  fetch?: FetchLike;
  /**
   * Fall back to Server-Sent Events (`GET /v1/sse` at `httpUrl`, with
   * `globalThis.fetch`) when the WebSocket cannot open: none in the
   * environment, its constructor throws, or 2 attempts in a row end before
   * their welcome. `client.transport` and the `transport` event say so.
   * Default true.
   */
  sse?: boolean;
}

/** The transport of the client's connections. */
export type TransportKind = 'websocket' | 'sse';

/** The client moved to another transport (the `transport` event). */
export interface TransportChange {
  transport: TransportKind;
  /** Why, for logs. */
  reason: string;
}

/** An event of an agent run, with `data` typed by its name. */
export type AgentEventFrame<K extends AgentEventName = AgentEventName> = Omit<
  EventFrame,
  'event' | 'data' | 'runId'
> & {
  event: K;
  runId: string;
  data: AgentEventDataMap[K];
};

/** Any of the five agent events; `switch (e.event)` narrows `data`. */
export type AgentEvent = { [K in AgentEventName]: AgentEventFrame<K> }[AgentEventName];

export interface StateChange {
  state: ClientState;
  previous: ClientState;
}

/** Events between `lastSeq` and `from` are lost (trimmed history, or a new epoch). */
export interface GapInfo {
  epoch: string;
  /** The first seq the server still had. */
  from: number;
  /** The client's cursor before the welcome (null: it had none). */
  lastSeq: number | null;
  /** The stream was recreated: old seqs mean nothing. */
  newEpoch: boolean;
}

export type ClientErrorKind =
  'transport' | 'server' | 'protocol' | 'token' | 'storage' | 'listener';

export interface ClientError {
  kind: ClientErrorKind;
  message: string;
  /** The server's error code, for `server` errors. */
  code?: string;
  cause?: unknown;
}

/** The client stopped for good: it will not reconnect by itself. */
export interface ClosedInfo {
  code: number;
  reason: string;
  advice: ReconnectAdvice;
}

export interface ClientEventMap {
  state: StateChange;
  welcome: WelcomeFrame;
  /** Every event of the user's stream, once each, in seq order. */
  event: EventFrame;
  broadcast: BroadcastFrame;
  gap: GapInfo;
  /** The server accepted a `refresh`: the connection lives on with the new token. */
  refreshed: RefreshedFrame;
  error: ClientError;
  closed: ClosedInfo;
  /** The client fell back to Server-Sent Events (see option `sse`). */
  transport: TransportChange;
  /**
   * A run in `client.runs` changed: a `run_snapshot` frame, a fetched
   * snapshot or one of its events was folded in. The snapshot is the SDK's,
   * updated in place: copy it (`structuredClone`) to keep this state.
   */
  run: RunSnapshot;
}
