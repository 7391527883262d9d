/**
 * The options of `AgentSocketClient`, checked once in its constructor with a
 * `TypeError` naming the option, and their defaults.
 */
import type { AgentSocketClientOptions, AuthMode } from './client-types.js';
import { DEFAULT_CURSOR_STORAGE_KEY } from './cursor-storage.js';
import type { StorageLike } from './cursor-storage.js';
import { DEFAULT_RUNS_LIMIT } from './run-tracker.js';
import { isNodeRuntime } from './websocket-like.js';

/** The checked options, with their defaults applied. */
export interface ResolvedClientOptions {
  readonly auth: AuthMode;
  readonly storage: StorageLike | undefined;
  readonly storageKey: string;
  readonly refreshLeadMs: number;
  readonly connectTimeoutMs: number;
  /** Silence tolerated until a welcome names the heartbeat. */
  readonly defaultHeartbeatTimeoutMs: number;
  readonly maxReconnectAttempts: number;
  readonly recentLimit: number;
  /** Ask for `run_snapshot` frames (`snapshots=1`). */
  readonly snapshots: boolean;
  readonly runsLimit: number;
  /** Fall back to Server-Sent Events when the WebSocket cannot open. */
  readonly sse: boolean;
}

/** Parses the gateway URL; throws a TypeError naming the `url` option when it is not absolute ws:/wss:. */
export function parseSocketUrl(value: unknown): URL {
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

/** Checks the `httpUrl` option: an absolute http: or https: URL. */
export function parseHttpUrl(value: unknown): URL {
  let url: URL | null = null;
  try {
    url = typeof value === 'string' ? new URL(value) : null;
  } catch {
    // Reported below with the option's name.
  }
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new TypeError('option httpUrl must be an absolute http: or https: URL');
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

/** Checks `options` and applies the defaults; throws a TypeError naming the first bad option. */
export function resolveClientOptions(options: AgentSocketClientOptions): ResolvedClientOptions {
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
  if (options.sse !== undefined && typeof options.sse !== 'boolean') {
    throw new TypeError('option sse must be a boolean');
  }
  if (options.snapshots !== undefined && typeof options.snapshots !== 'boolean') {
    throw new TypeError('option snapshots must be a boolean');
  }
  if (options.httpUrl !== undefined) parseHttpUrl(options.httpUrl);
  if (options.fetch !== undefined && typeof options.fetch !== 'function') {
    throw new TypeError('option fetch must be a function');
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
  return {
    auth,
    storage: options.storage,
    storageKey: options.storageKey ?? DEFAULT_CURSOR_STORAGE_KEY,
    refreshLeadMs: positive('refreshLeadMs', options.refreshLeadMs, 30_000),
    connectTimeoutMs: positive('connectTimeoutMs', options.connectTimeoutMs, 15_000),
    defaultHeartbeatTimeoutMs: positive(
      'defaultHeartbeatTimeoutMs',
      options.defaultHeartbeatTimeoutMs,
      60_000,
    ),
    maxReconnectAttempts: positive('maxReconnectAttempts', options.maxReconnectAttempts, Infinity),
    recentLimit: positive('recentEventsLimit', options.recentEventsLimit, 256),
    snapshots: options.snapshots ?? true,
    runsLimit: positive('runsLimit', options.runsLimit, DEFAULT_RUNS_LIMIT),
    sse: options.sse ?? true,
  };
}
