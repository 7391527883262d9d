/**
 * Every option of `agentsocket serve` (PROTOCOL.md section 6), declared once:
 * the CLI registers its flags and `--help` from this table, `parseServeConfig`
 * reads it, and `docs/operations.md` lists it (test/unit/operations-doc.test.ts).
 * Defaults come from where the library keeps them (`DEFAULT_LIMITS`,
 * `HISTORY_DEFAULTS`, `DEFAULT_TIMING`, `DEFAULT_LEEWAY_SECONDS`), so the CLI
 * and an embedding app start from the same values.
 */
import { DEFAULT_LEEWAY_SECONDS, MIN_SECRET_BYTES } from '../auth/jwt-authenticator.js';
import { HISTORY_DEFAULTS, RUN_DEFAULTS } from '../broker/stream-defaults.js';
import { RUN_GRAMMAR_MODES } from '../broker/stream-engine.js';
import { DEFAULT_LIMITS, DEFAULT_TIMING } from '../gateway/options.js';
import type { OptionSpec } from '../options/option-spec.js';

/** The pino levels `--log-level` takes. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * The API key setting, shared by every command that takes one: `serve` reads
 * a list (comma-separated), `publish` the first key. `AGENTSOCKET_API_KEYS`
 * is the name `serve` used to read; still read, as an alias.
 */
export const API_KEY_OPTION = {
  flag: '--api-key',
  env: 'AGENTSOCKET_API_KEY',
  aliases: ['AGENTSOCKET_API_KEYS'],
  kind: 'api-keys',
  repeatable: true,
  description: 'API key of publishers and operators (repeatable; env: comma-separated)',
  key: 'apiKeys',
} as const satisfies OptionSpec;

/** The HS256 secret of user tokens, shared by `serve --jwt-secret` and `token --secret`. */
export const JWT_SECRET_ENV = 'AGENTSOCKET_JWT_SECRET';

/** Every option of `agentsocket serve`, in help order. */
export const SERVE_OPTIONS = [
  {
    flag: '--port',
    env: 'PORT',
    kind: 'port',
    default: 8080,
    description: 'TCP port (0: any free port)',
    key: 'port',
  },
  {
    flag: '--host',
    env: 'HOST',
    kind: 'string',
    default: '0.0.0.0',
    description: 'address to listen on',
    key: 'host',
  },
  {
    flag: '--jwt-secret',
    env: JWT_SECRET_ENV,
    kind: 'secret',
    description: `HS256 secret of user tokens (at least ${MIN_SECRET_BYTES} bytes)`,
    key: 'jwtSecret',
  },
  {
    flag: '--jwt-public-key',
    env: 'AGENTSOCKET_JWT_PUBLIC_KEY',
    kind: 'pem-key',
    description: 'PEM public key of user tokens (RS256/ES256/EdDSA), or a path to a PEM file',
    key: 'jwtPublicKey',
  },
  {
    flag: '--jwks-url',
    env: 'AGENTSOCKET_JWKS_URL',
    kind: 'url',
    protocols: ['https:', 'http:'],
    description: 'JWKS URL of user tokens',
    key: 'jwksUrl',
  },
  {
    flag: '--jwt-algorithms',
    env: 'AGENTSOCKET_JWT_ALGORITHMS',
    kind: 'list',
    description: 'allowed JWT algorithms, comma-separated (default: from the key)',
    key: 'jwtAlgorithms',
  },
  {
    flag: '--jwt-issuer',
    env: 'AGENTSOCKET_JWT_ISSUER',
    kind: 'string',
    description: 'required iss of user tokens',
    key: 'jwtIssuer',
  },
  {
    flag: '--jwt-audience',
    env: 'AGENTSOCKET_JWT_AUDIENCE',
    kind: 'string',
    description: 'required aud of user tokens',
    key: 'jwtAudience',
  },
  {
    flag: '--jwt-leeway',
    env: 'AGENTSOCKET_JWT_LEEWAY',
    kind: 'seconds',
    default: DEFAULT_LEEWAY_SECONDS,
    description: 'clock skew tolerated on exp and nbf (whole seconds, 0 allowed)',
    key: 'jwtLeewaySeconds',
  },
  {
    flag: '--jwt-max-lifetime',
    env: 'AGENTSOCKET_JWT_MAX_LIFETIME',
    kind: 'seconds',
    description: 'longest exp - iat a user token may have (whole seconds; 0 or unset: no maximum)',
    key: 'jwtMaxLifetimeSeconds',
  },
  {
    flag: '--jwt-allow-no-exp',
    env: 'AGENTSOCKET_JWT_ALLOW_NO_EXP',
    kind: 'boolean',
    description: 'accept user tokens without exp (their connections never expire)',
    key: 'jwtAllowNoExp',
  },
  API_KEY_OPTION,
  {
    flag: '--redis',
    env: 'AGENTSOCKET_REDIS_URL',
    kind: 'url',
    protocols: ['redis:', 'rediss:'],
    description: 'redis:// URL for multi-node (default: in-memory engine)',
    key: 'redisUrl',
  },
  {
    flag: '--redis-cluster',
    env: 'AGENTSOCKET_REDIS_CLUSTER',
    kind: 'list',
    description: 'Redis Cluster seed node URLs, comma-separated (instead of --redis)',
    key: 'redisCluster',
  },
  {
    flag: '--allowed-origins',
    env: 'AGENTSOCKET_ALLOWED_ORIGINS',
    kind: 'origins',
    description: 'allowed browser origins, comma-separated (default: any)',
    key: 'allowedOrigins',
  },
  {
    flag: '--trusted-proxies',
    env: 'AGENTSOCKET_TRUSTED_PROXIES',
    kind: 'ip-addresses',
    description: 'proxy addresses whose X-Forwarded-For is believed, comma-separated',
    key: 'trustedProxies',
  },
  {
    flag: '--history-size',
    env: 'AGENTSOCKET_HISTORY_SIZE',
    kind: 'positive-integer',
    default: HISTORY_DEFAULTS.historySize,
    description: 'events kept per user for resume',
    key: 'historySize',
  },
  {
    flag: '--history-ttl',
    env: 'AGENTSOCKET_HISTORY_TTL',
    kind: 'duration',
    default: HISTORY_DEFAULTS.historyTtlMs,
    description: 'how long history is kept',
    key: 'historyTtlMs',
  },
  {
    flag: '--run-grammar',
    env: 'AGENTSOCKET_RUN_GRAMMAR',
    kind: 'enum',
    choices: RUN_GRAMMAR_MODES,
    default: 'strict',
    description:
      'events of a run that break the run grammar: refused (409), published and counted, or published',
    key: 'runGrammar',
  },
  {
    flag: '--run-ttl',
    env: 'AGENTSOCKET_RUN_TTL',
    kind: 'duration',
    default: RUN_DEFAULTS.runTtlMs,
    description: "how long a run's snapshot is kept after its last event",
    key: 'runTtlMs',
  },
  {
    flag: '--run-snapshot-max-size',
    env: 'AGENTSOCKET_RUN_SNAPSHOT_MAX_SIZE',
    kind: 'size',
    default: RUN_DEFAULTS.runSnapshotMaxBytes,
    description: "JSON of one run's snapshot; past it text is cut (truncated: true)",
    key: 'runSnapshotMaxBytes',
  },
  {
    flag: '--heartbeat',
    env: 'AGENTSOCKET_HEARTBEAT',
    kind: 'duration',
    default: DEFAULT_TIMING.heartbeatMs,
    description: 'interval of server pings',
    key: 'heartbeatMs',
  },
  {
    flag: '--heartbeat-timeout',
    env: 'AGENTSOCKET_HEARTBEAT_TIMEOUT',
    kind: 'duration',
    description: 'silence before close 4408 (default: 2 x heartbeat)',
    key: 'heartbeatTimeoutMs',
  },
  {
    flag: '--ack-timeout',
    env: 'AGENTSOCKET_ACK_TIMEOUT',
    kind: 'duration',
    default: DEFAULT_TIMING.ackTimeoutMs,
    description: 'time to ack a critical event before close 4408',
    key: 'ackTimeoutMs',
  },
  {
    flag: '--handshake-timeout',
    env: 'AGENTSOCKET_HANDSHAKE_TIMEOUT',
    kind: 'duration',
    default: DEFAULT_LIMITS.handshakeTimeoutMs,
    description: 'first byte to upgrade; also the HTTP headers and request timeout',
    key: 'handshakeTimeoutMs',
  },
  {
    flag: '--shutdown-timeout',
    env: 'AGENTSOCKET_SHUTDOWN_TIMEOUT',
    kind: 'duration',
    default: 30_000,
    description: 'longest drain on SIGTERM before a forced exit',
    key: 'shutdownTimeoutMs',
  },
  {
    flag: '--max-connections',
    env: 'AGENTSOCKET_MAX_CONNECTIONS',
    kind: 'positive-integer',
    default: DEFAULT_LIMITS.maxConnections,
    description: 'open connections of the node',
    key: 'maxConnections',
  },
  {
    flag: '--max-connections-per-user',
    env: 'AGENTSOCKET_MAX_CONNECTIONS_PER_USER',
    kind: 'positive-integer',
    default: DEFAULT_LIMITS.maxConnectionsPerUser,
    description: 'open connections per user',
    key: 'maxConnectionsPerUser',
  },
  {
    flag: '--user-connection-policy',
    env: 'AGENTSOCKET_USER_CONNECTION_POLICY',
    kind: 'enum',
    choices: ['reject', 'evict-oldest'],
    default: DEFAULT_LIMITS.userConnectionPolicy,
    description: 'past the per-user limit: reject (429) or evict-oldest (4409)',
    key: 'userConnectionPolicy',
  },
  {
    flag: '--max-connections-per-ip',
    env: 'AGENTSOCKET_MAX_CONNECTIONS_PER_IP',
    kind: 'positive-integer',
    default: DEFAULT_LIMITS.maxConnectionsPerIp,
    description: 'open connections per client IP',
    key: 'maxConnectionsPerIp',
  },
  {
    flag: '--handshakes-per-ip',
    env: 'AGENTSOCKET_HANDSHAKES_PER_IP',
    kind: 'positive-integer',
    default: DEFAULT_LIMITS.handshakesPerIpPerSecond,
    description: 'handshakes per client IP per second',
    key: 'handshakesPerIpPerSecond',
  },
  {
    flag: '--max-frame-size',
    env: 'AGENTSOCKET_MAX_FRAME_SIZE',
    kind: 'size',
    default: DEFAULT_LIMITS.maxFrameBytes,
    description: 'largest client frame (close 1009 past it)',
    key: 'maxFrameBytes',
  },
  {
    flag: '--frames-per-second',
    env: 'AGENTSOCKET_FRAMES_PER_SECOND',
    kind: 'positive-integer',
    default: DEFAULT_LIMITS.framesPerSecond,
    description: 'client frames per connection per second',
    key: 'framesPerSecond',
  },
  {
    flag: '--frame-burst',
    env: 'AGENTSOCKET_FRAME_BURST',
    kind: 'positive-integer',
    default: DEFAULT_LIMITS.frameBurst,
    description: 'burst of client frames',
    key: 'frameBurst',
  },
  {
    flag: '--max-buffered',
    env: 'AGENTSOCKET_MAX_BUFFERED',
    kind: 'size',
    default: DEFAULT_LIMITS.maxBufferedBytes,
    description: 'unsent bytes per connection (close 4429 past it)',
    key: 'maxBufferedBytes',
  },
  {
    flag: '--coalesce-above',
    env: 'AGENTSOCKET_COALESCE_ABOVE',
    kind: 'size',
    default: DEFAULT_LIMITS.coalesceAboveBytes,
    description: "unsent bytes past which a connection's deltas are merged until it drains",
    key: 'coalesceAboveBytes',
  },
  {
    flag: '--run-snapshot-threshold',
    env: 'AGENTSOCKET_RUN_SNAPSHOT_THRESHOLD',
    kind: 'positive-integer',
    default: DEFAULT_LIMITS.runSnapshotThreshold,
    description: 'events of a run in a replay past which it is sent as a run_snapshot',
    key: 'runSnapshotThreshold',
  },
  {
    flag: '--max-data-size',
    env: 'AGENTSOCKET_MAX_DATA_SIZE',
    kind: 'size',
    default: DEFAULT_LIMITS.maxDataBytes,
    description: 'serialized data of one event',
    key: 'maxDataBytes',
  },
  {
    flag: '--max-data-depth',
    env: 'AGENTSOCKET_MAX_DATA_DEPTH',
    kind: 'positive-integer',
    default: DEFAULT_LIMITS.maxDataDepth,
    description: 'nesting of arrays and objects in the data of one event',
    key: 'maxDataDepth',
  },
  {
    flag: '--max-body-size',
    env: 'AGENTSOCKET_MAX_BODY_SIZE',
    kind: 'size',
    default: DEFAULT_LIMITS.maxBodyBytes,
    description: 'HTTP request body',
    key: 'maxBodyBytes',
  },
  {
    flag: '--max-batch-events',
    env: 'AGENTSOCKET_MAX_BATCH_EVENTS',
    kind: 'positive-integer',
    default: DEFAULT_LIMITS.maxBatchEvents,
    description: 'events in one batch publish',
    key: 'maxBatchEvents',
  },
  {
    flag: '--max-pending-waits',
    env: 'AGENTSOCKET_MAX_PENDING_WAITS',
    kind: 'positive-integer',
    default: DEFAULT_LIMITS.maxPendingWaits,
    description: 'publishes waiting for delivery (?wait=) on the node (429 past it)',
    key: 'maxPendingWaits',
  },
  {
    flag: '--max-pending-waits-per-user',
    env: 'AGENTSOCKET_MAX_PENDING_WAITS_PER_USER',
    kind: 'positive-integer',
    default: DEFAULT_LIMITS.maxPendingWaitsPerUser,
    description: 'publishes waiting for delivery (?wait=) per user (429 past it)',
    key: 'maxPendingWaitsPerUser',
  },
  {
    flag: '--log-level',
    env: 'AGENTSOCKET_LOG_LEVEL',
    kind: 'enum',
    choices: LOG_LEVELS,
    default: 'info',
    description: 'fatal, error, warn, info, debug, trace or silent',
    key: 'logLevel',
  },
  {
    flag: '--dev',
    env: 'AGENTSOCKET_DEV',
    kind: 'boolean',
    description: 'development mode: random JWT secret and API key when none is given, demo page',
    key: 'dev',
  },
] as const satisfies readonly OptionSpec[];

export type ServeFlag = (typeof SERVE_OPTIONS)[number]['flag'];
