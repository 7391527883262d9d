/**
 * Every knob of the gateway, with the defaults of PROTOCOL.md's limits table.
 * Options are checked once, up front, with exact messages (`resolveOptions`).
 */
import type { Logger } from 'pino';
import type { UserAuthenticator } from '../auth/authenticator.js';
import type { TicketStore } from '../auth/ticket-store.js';
import type { Broker } from '../broker/broker.js';
import { HISTORY_DEFAULTS, RUN_DEFAULTS } from '../broker/stream-defaults.js';
import { RUN_GRAMMAR_MODES, type RunGrammarMode } from '../broker/stream-engine.js';
import { OptionError, positiveInteger } from '../options/validators.js';
import { DEFAULT_MAX_DATA_DEPTH } from '../protocol/event-input.js';
import { COALESCE_BELOW_BYTES } from './socket-writer.js';

export interface GatewayLimits {
  /** Open connections per user. Default 20. */
  maxConnectionsPerUser: number;
  /**
   * What a handshake past `maxConnectionsPerUser` gets: `reject` answers 429
   * (the spec's limits table); `evict-oldest` admits it and closes the user's
   * oldest connection with 4409. Default `reject`.
   */
  userConnectionPolicy: 'reject' | 'evict-oldest';
  /** Open connections per client IP. Default 1000. */
  maxConnectionsPerIp: number;
  /** Open connections of the whole node; past it handshakes get 503. Default 100 000. */
  maxConnections: number;
  /** Handshakes per client IP per second (token bucket, burst of the same size). Default 50. */
  handshakesPerIpPerSecond: number;
  /** Largest client frame (and message) in bytes; past it close 1009. Default 64 KiB. */
  maxFrameBytes: number;
  /**
   * Frames one client message may arrive in (its first frame plus
   * continuations); past it ws closes with 1008 and stops reading, so a flood
   * of tiny fragments cannot pin memory. Browsers never fragment what they
   * send. Default 128.
   */
  maxFragments: number;
  /** Client frames per connection per second; past the burst close 1008. Default 100. */
  framesPerSecond: number;
  /** Burst of client frames. Default 200. */
  frameBurst: number;
  /** Malformed frames tolerated per `badFrameWindowMs` before close 1008. Default 10. */
  maxBadFrames: number;
  badFrameWindowMs: number;
  /** Unsent bytes per connection; past it close 4429. Default 4 MiB. */
  maxBufferedBytes: number;
  /**
   * Unsent bytes of a connection past which its frames wait in its delta
   * queue, merged (protocol 1.1 "Coalesced deltas"), until the socket drains.
   * At most `maxBufferedBytes`. Default 256 KiB.
   */
  coalesceAboveBytes: number;
  /**
   * A run with more events than this in a replay is sent as a `run_snapshot`
   * to a connection that asked for snapshots (protocol 1.1 "Run snapshots").
   * Default 200.
   */
  runSnapshotThreshold: number;
  /** Serialized `data` of one event. Default 256 KiB. */
  maxDataBytes: number;
  /** Nesting of arrays and objects in `data` (`[[0]]` is 2); past it 400. Default 64. */
  maxDataDepth: number;
  /** HTTP body. Default 1 MiB. */
  maxBodyBytes: number;
  /** Events in one batch publish. Default 1000. */
  maxBatchEvents: number;
  /** Publishes waiting for delivery (`?wait=`) on the node; past it 429 `too_many_waits`. Default 10 000. */
  maxPendingWaits: number;
  /** Publishes waiting for delivery (`?wait=`) per user; past it 429 `too_many_waits`. Default 100. */
  maxPendingWaitsPerUser: number;
  /** Live events buffered for a connection while its replay is read. Default 10 000. */
  maxReplayBuffer: number;
  /** From the first byte of a handshake to the upgrade. Default 10 s. */
  handshakeTimeoutMs: number;
}

export const DEFAULT_LIMITS: Readonly<GatewayLimits> = {
  maxConnectionsPerUser: 20,
  userConnectionPolicy: 'reject',
  maxConnectionsPerIp: 1000,
  maxConnections: 100_000,
  handshakesPerIpPerSecond: 50,
  maxFrameBytes: 64 * 1024,
  maxFragments: 128,
  framesPerSecond: 100,
  frameBurst: 200,
  maxBadFrames: 10,
  badFrameWindowMs: 10_000,
  maxBufferedBytes: 4 * 1024 * 1024,
  coalesceAboveBytes: 256 * 1024,
  runSnapshotThreshold: 200,
  maxDataBytes: 256 * 1024,
  maxDataDepth: DEFAULT_MAX_DATA_DEPTH,
  maxBodyBytes: 1024 * 1024,
  maxBatchEvents: 1000,
  maxPendingWaits: 10_000,
  maxPendingWaitsPerUser: 100,
  maxReplayBuffer: 10_000,
  handshakeTimeoutMs: 10_000,
};

/** Defaults of the gateway's timers (the CLI's defaults come from here too). */
export const DEFAULT_TIMING = {
  heartbeatMs: 25_000,
  ackTimeoutMs: 10_000,
  closeTimeoutMs: 5_000,
} as const;

export interface GatewayOptions {
  /** Verifies user tokens. Required. */
  authenticator: UserAuthenticator;
  /** The engine. Default: a `MemoryBroker` with `historySize` and `historyTtlMs`. */
  broker?: Broker;
  /** Single-use tickets. Default: an in-memory store. */
  tickets?: TicketStore;
  /** Allowed `Origin` values (exact match, scheme and port included). Default: any. */
  allowedOrigins?: readonly string[];
  /** Peers whose `X-Forwarded-For` is believed (exact addresses). Default: none. */
  trustedProxies?: readonly string[];
  /** Path of the WebSocket endpoint. Default `/v1/ws`. */
  path?: string;
  /** Interval of server `ping` frames. Default 25 000 ms. */
  heartbeatMs?: number;
  /** Silence after which a connection is closed with 4408. Default 2 × `heartbeatMs`. */
  heartbeatTimeoutMs?: number;
  /** Time a critical event has to be acked before close 4408. Default 10 000 ms. */
  ackTimeoutMs?: number;
  /** History per user, for the default memory broker. Default 1000. */
  historySize?: number;
  /** History lifetime, for the default memory broker. Default 1 h. */
  historyTtlMs?: number;
  /**
   * The run grammar at publish: `strict` refuses a violation (409 with the
   * rule's code), `warn` publishes it and counts it
   * (`agentsocket_run_grammar_violations_total`), `off` publishes it. Default `strict`.
   */
  runGrammar?: RunGrammarMode;
  /** Lifetime of a run snapshot after its run's last event, for the default memory broker. Default 24 h. */
  runTtlMs?: number;
  /** Size cap of one run snapshot's JSON, for the default memory broker. Default 4 MiB. */
  runSnapshotMaxBytes?: number;
  /** Grace after a close frame before the socket is destroyed. Default 5 000 ms. */
  closeTimeoutMs?: number;
  limits?: Partial<GatewayLimits>;
  /** Structured logs. Default: silent. */
  logger?: Logger;
  /** Refuses a user at the handshake (403) and on demand. Default: nobody is blocked. */
  isUserBlocked?: (userId: string) => boolean | Promise<boolean>;
}

export interface ResolvedOptions {
  authenticator: UserAuthenticator;
  allowedOrigins: ReadonlySet<string> | null;
  trustedProxies: ReadonlySet<string>;
  path: string;
  heartbeatMs: number;
  heartbeatTimeoutMs: number;
  ackTimeoutMs: number;
  historySize: number;
  historyTtlMs: number;
  runGrammar: RunGrammarMode;
  runTtlMs: number;
  runSnapshotMaxBytes: number;
  closeTimeoutMs: number;
  limits: GatewayLimits;
  isUserBlocked: ((userId: string) => boolean | Promise<boolean>) | null;
}

/**
 * The default of `limits.coalesceAboveBytes` for a node whose slow-consumer
 * bound is `maxBufferedBytes`: 256 KiB, or half the bound when that is lower.
 */
export function defaultCoalesceAboveBytes(maxBufferedBytes: number): number {
  return Math.min(DEFAULT_LIMITS.coalesceAboveBytes, Math.floor(maxBufferedBytes / 2));
}

/**
 * Applies defaults and checks every option; throws `OptionError` (a
 * `TypeError`) naming the first bad one.
 */
export function resolveOptions(options: GatewayOptions): ResolvedOptions {
  if (!options || typeof options.authenticator?.verify !== 'function') {
    throw new OptionError('option authenticator is required: an object with verify(token)');
  }
  const limits: GatewayLimits = { ...DEFAULT_LIMITS, ...options.limits };
  // Coalescing must start below the slow-consumer bound, or there is no room
  // to merge in: a node that lowers only `maxBufferedBytes` gets half of it.
  if (options.limits?.coalesceAboveBytes === undefined) {
    limits.coalesceAboveBytes = defaultCoalesceAboveBytes(limits.maxBufferedBytes);
  }
  for (const [key, value] of Object.entries(limits)) {
    if (key === 'userConnectionPolicy') continue;
    positiveInteger(`option limits.${key}`, value as number);
  }
  if (limits.userConnectionPolicy !== 'reject' && limits.userConnectionPolicy !== 'evict-oldest') {
    throw new OptionError('option limits.userConnectionPolicy must be "reject" or "evict-oldest"');
  }
  if (
    limits.coalesceAboveBytes <= COALESCE_BELOW_BYTES ||
    limits.coalesceAboveBytes > limits.maxBufferedBytes
  ) {
    throw new OptionError(
      `option limits.coalesceAboveBytes must be over ${COALESCE_BELOW_BYTES} (what a socket holds for one turn) and at most limits.maxBufferedBytes`,
    );
  }
  const heartbeatMs = positiveInteger(
    'option heartbeatMs',
    options.heartbeatMs ?? DEFAULT_TIMING.heartbeatMs,
  );
  const path = options.path ?? '/v1/ws';
  if (!path.startsWith('/')) throw new OptionError('option path must start with "/"');
  const origins = options.allowedOrigins;
  return {
    authenticator: options.authenticator,
    allowedOrigins:
      origins === undefined || origins.length === 0 || origins.includes('*')
        ? null
        : new Set(origins),
    trustedProxies: new Set(options.trustedProxies ?? []),
    path,
    heartbeatMs,
    heartbeatTimeoutMs: positiveInteger(
      'option heartbeatTimeoutMs',
      options.heartbeatTimeoutMs ?? heartbeatMs * 2,
    ),
    ackTimeoutMs: positiveInteger(
      'option ackTimeoutMs',
      options.ackTimeoutMs ?? DEFAULT_TIMING.ackTimeoutMs,
    ),
    historySize: positiveInteger(
      'option historySize',
      options.historySize ?? HISTORY_DEFAULTS.historySize,
    ),
    historyTtlMs: positiveInteger(
      'option historyTtlMs',
      options.historyTtlMs ?? HISTORY_DEFAULTS.historyTtlMs,
    ),
    runGrammar: runGrammarMode(options.runGrammar),
    runTtlMs: positiveInteger('option runTtlMs', options.runTtlMs ?? RUN_DEFAULTS.runTtlMs),
    runSnapshotMaxBytes: positiveInteger(
      'option runSnapshotMaxBytes',
      options.runSnapshotMaxBytes ?? RUN_DEFAULTS.runSnapshotMaxBytes,
    ),
    closeTimeoutMs: positiveInteger(
      'option closeTimeoutMs',
      options.closeTimeoutMs ?? DEFAULT_TIMING.closeTimeoutMs,
    ),
    limits,
    isUserBlocked: options.isUserBlocked ?? null,
  };
}

function runGrammarMode(mode: RunGrammarMode | undefined): RunGrammarMode {
  if (mode === undefined) return 'strict';
  if (!RUN_GRAMMAR_MODES.includes(mode)) {
    throw new OptionError(`option runGrammar must be one of ${RUN_GRAMMAR_MODES.join(', ')}`);
  }
  return mode;
}
