/**
 * The configuration of `agentsocket serve` (PROTOCOL.md section 6): every
 * flag with its environment variable, parsed and checked up front with exact
 * messages. A flag wins over its variable; a variable wins over the default.
 *
 * `SERVE_OPTIONS` is the one table: the CLI registers its flags from it,
 * `docs/operations.md` lists it, and `parseServeConfig` reads it.
 *
 * Messages name where the bad value came from (`--port` or `PORT`) and never
 * repeat a secret (JWT secret, API key, Redis URL with a password).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { LevelWithSilent } from 'pino';
import { ApiKeys, looksLikeJwt, MAX_API_KEY_LENGTH, MIN_API_KEY_LENGTH } from '../auth/api-keys.js';
import {
  createJwtAuthenticator,
  MIN_SECRET_BYTES,
  type JwtAuthenticatorOptions,
} from '../auth/jwt-authenticator.js';
import { DEFAULT_LIMITS, type GatewayLimits } from '../gateway/options.js';

/** A configuration that cannot run; the CLI prints the message and exits 2. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

type OptionKind =
  | 'port'
  | 'string'
  | 'secret'
  | 'list'
  | 'integer'
  | 'duration'
  | 'size'
  | 'boolean'
  | 'level'
  | 'policy';

export interface OptionSpec {
  /** The long flag, e.g. `--port`. */
  flag: string;
  /** Its environment variable. */
  env: string;
  kind: OptionKind;
  /** The default as written on the command line (for help and docs); none when absent. */
  defaultText?: string;
  description: string;
  /** May be given several times (`--api-key a --api-key b`). */
  repeatable?: boolean;
}

/** Every flag of `agentsocket serve`, in help order. */
export const SERVE_OPTIONS = [
  {
    flag: '--port',
    env: 'PORT',
    kind: 'port',
    defaultText: '8080',
    description: 'TCP port (0: any free port)',
  },
  {
    flag: '--host',
    env: 'HOST',
    kind: 'string',
    defaultText: '0.0.0.0',
    description: 'address to listen on',
  },
  {
    flag: '--jwt-secret',
    env: 'AGENTSOCKET_JWT_SECRET',
    kind: 'secret',
    description: `HS256 secret of user tokens (at least ${MIN_SECRET_BYTES} bytes)`,
  },
  {
    flag: '--jwt-public-key',
    env: 'AGENTSOCKET_JWT_PUBLIC_KEY',
    kind: 'string',
    description: 'PEM public key of user tokens (RS256/ES256/EdDSA), or a path to a PEM file',
  },
  {
    flag: '--jwks-url',
    env: 'AGENTSOCKET_JWKS_URL',
    kind: 'string',
    description: 'JWKS URL of user tokens',
  },
  {
    flag: '--jwt-algorithms',
    env: 'AGENTSOCKET_JWT_ALGORITHMS',
    kind: 'list',
    description: 'allowed JWT algorithms, comma-separated (default: from the key)',
  },
  {
    flag: '--jwt-issuer',
    env: 'AGENTSOCKET_JWT_ISSUER',
    kind: 'string',
    description: 'required iss of user tokens',
  },
  {
    flag: '--jwt-audience',
    env: 'AGENTSOCKET_JWT_AUDIENCE',
    kind: 'string',
    description: 'required aud of user tokens',
  },
  {
    flag: '--jwt-leeway',
    env: 'AGENTSOCKET_JWT_LEEWAY',
    kind: 'duration',
    defaultText: '5s',
    description: 'clock skew tolerated on exp and nbf (whole seconds)',
  },
  {
    flag: '--api-key',
    env: 'AGENTSOCKET_API_KEYS',
    kind: 'list',
    repeatable: true,
    description: 'API key of publishers and operators (repeatable; env: comma-separated)',
  },
  {
    flag: '--redis',
    env: 'AGENTSOCKET_REDIS_URL',
    kind: 'secret',
    description: 'redis:// URL for multi-node (default: in-memory engine)',
  },
  {
    flag: '--allowed-origins',
    env: 'AGENTSOCKET_ALLOWED_ORIGINS',
    kind: 'list',
    description: 'allowed browser origins, comma-separated (default: any)',
  },
  {
    flag: '--trusted-proxies',
    env: 'AGENTSOCKET_TRUSTED_PROXIES',
    kind: 'list',
    description: 'proxy addresses whose X-Forwarded-For is believed, comma-separated',
  },
  {
    flag: '--history-size',
    env: 'AGENTSOCKET_HISTORY_SIZE',
    kind: 'integer',
    defaultText: '1000',
    description: 'events kept per user for resume',
  },
  {
    flag: '--history-ttl',
    env: 'AGENTSOCKET_HISTORY_TTL',
    kind: 'duration',
    defaultText: '1h',
    description: 'how long history is kept',
  },
  {
    flag: '--heartbeat',
    env: 'AGENTSOCKET_HEARTBEAT',
    kind: 'duration',
    defaultText: '25s',
    description: 'interval of server pings',
  },
  {
    flag: '--heartbeat-timeout',
    env: 'AGENTSOCKET_HEARTBEAT_TIMEOUT',
    kind: 'duration',
    description: 'silence before close 4408 (default: 2 x heartbeat)',
  },
  {
    flag: '--ack-timeout',
    env: 'AGENTSOCKET_ACK_TIMEOUT',
    kind: 'duration',
    defaultText: '10s',
    description: 'time to ack a critical event before close 4408',
  },
  {
    flag: '--handshake-timeout',
    env: 'AGENTSOCKET_HANDSHAKE_TIMEOUT',
    kind: 'duration',
    defaultText: '10s',
    description: 'first byte to upgrade; also the HTTP headers and request timeout',
  },
  {
    flag: '--shutdown-timeout',
    env: 'AGENTSOCKET_SHUTDOWN_TIMEOUT',
    kind: 'duration',
    defaultText: '30s',
    description: 'longest drain on SIGTERM before a forced exit',
  },
  {
    flag: '--max-connections',
    env: 'AGENTSOCKET_MAX_CONNECTIONS',
    kind: 'integer',
    defaultText: '100000',
    description: 'open connections of the node',
  },
  {
    flag: '--max-connections-per-user',
    env: 'AGENTSOCKET_MAX_CONNECTIONS_PER_USER',
    kind: 'integer',
    defaultText: '20',
    description: 'open connections per user',
  },
  {
    flag: '--user-connection-policy',
    env: 'AGENTSOCKET_USER_CONNECTION_POLICY',
    kind: 'policy',
    defaultText: 'reject',
    description: 'past the per-user limit: reject (429) or evict-oldest (4409)',
  },
  {
    flag: '--max-connections-per-ip',
    env: 'AGENTSOCKET_MAX_CONNECTIONS_PER_IP',
    kind: 'integer',
    defaultText: '1000',
    description: 'open connections per client IP',
  },
  {
    flag: '--handshakes-per-ip',
    env: 'AGENTSOCKET_HANDSHAKES_PER_IP',
    kind: 'integer',
    defaultText: '50',
    description: 'handshakes per client IP per second',
  },
  {
    flag: '--max-frame-size',
    env: 'AGENTSOCKET_MAX_FRAME_SIZE',
    kind: 'size',
    defaultText: '64KiB',
    description: 'largest client frame (close 1009 past it)',
  },
  {
    flag: '--frames-per-second',
    env: 'AGENTSOCKET_FRAMES_PER_SECOND',
    kind: 'integer',
    defaultText: '100',
    description: 'client frames per connection per second',
  },
  {
    flag: '--frame-burst',
    env: 'AGENTSOCKET_FRAME_BURST',
    kind: 'integer',
    defaultText: '200',
    description: 'burst of client frames',
  },
  {
    flag: '--max-buffered',
    env: 'AGENTSOCKET_MAX_BUFFERED',
    kind: 'size',
    defaultText: '4MiB',
    description: 'unsent bytes per connection (close 4429 past it)',
  },
  {
    flag: '--max-data-size',
    env: 'AGENTSOCKET_MAX_DATA_SIZE',
    kind: 'size',
    defaultText: '256KiB',
    description: 'serialized data of one event',
  },
  {
    flag: '--max-body-size',
    env: 'AGENTSOCKET_MAX_BODY_SIZE',
    kind: 'size',
    defaultText: '1MiB',
    description: 'HTTP request body',
  },
  {
    flag: '--max-batch-events',
    env: 'AGENTSOCKET_MAX_BATCH_EVENTS',
    kind: 'integer',
    defaultText: '1000',
    description: 'events in one batch publish',
  },
  {
    flag: '--log-level',
    env: 'AGENTSOCKET_LOG_LEVEL',
    kind: 'level',
    defaultText: 'info',
    description: 'fatal, error, warn, info, debug, trace or silent',
  },
  {
    flag: '--dev',
    env: 'AGENTSOCKET_DEV',
    kind: 'boolean',
    description: 'development mode: random JWT secret and API key when none is given, demo page',
  },
] as const satisfies readonly OptionSpec[];

export type ServeFlag = (typeof SERVE_OPTIONS)[number]['flag'];

/** The camelCase property commander gives a flag (`--max-body-size` → `maxBodySize`). */
export function flagProperty(flag: string): string {
  return flag.slice(2).replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

export const LOG_LEVELS: readonly LevelWithSilent[] = [
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
  'silent',
];

export interface ServerConfig {
  port: number;
  host: string;
  /** Options of `createJwtAuthenticator`, checked. */
  jwt: JwtAuthenticatorOptions;
  apiKeys: string[];
  /** `redis://` URL, or null for the in-memory engine. May hold a password: never log it. */
  redisUrl: string | null;
  /** Empty: any origin. */
  allowedOrigins: string[];
  trustedProxies: string[];
  historySize: number;
  historyTtlMs: number;
  heartbeatMs: number;
  heartbeatTimeoutMs: number;
  ackTimeoutMs: number;
  shutdownTimeoutMs: number;
  limits: GatewayLimits;
  logLevel: LevelWithSilent;
  dev: boolean;
  /**
   * What `--dev` generated because none was given. The CLI prints these once
   * at start (to stderr, never through the logger).
   */
  generated: { jwtSecret?: string; apiKey?: string };
}

/** Raw values by flag property (what commander hands over): strings, string lists, booleans. */
export type RawFlags = Readonly<Record<string, string | readonly string[] | boolean | undefined>>;

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const DURATION_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};
const SIZE = /^(\d+)(b|kib|mib|gib)?$/i;
const SIZE_BYTES: Record<string, number> = { b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** `500ms`, `30s`, `5m`, `1h`, `2d` → ms; null when not a duration. */
export function parseDuration(text: string): number | null {
  const match = DURATION.exec(text.trim());
  if (!match) return null;
  const ms = Number(match[1]) * (DURATION_MS[match[2] as string] as number);
  return Number.isSafeInteger(ms) ? ms : null;
}

/** `65536`, `64KiB`, `1MiB` → bytes; null when not a size. */
export function parseSize(text: string): number | null {
  const match = SIZE.exec(text.trim());
  if (!match) return null;
  const bytes = Number(match[1]) * (SIZE_BYTES[(match[2] ?? 'b').toLowerCase()] as number);
  return Number.isSafeInteger(bytes) ? bytes : null;
}

interface RawValue {
  /** Where it came from, as the messages name it: `--port` or `PORT`. */
  source: string;
  value: string | readonly string[] | boolean;
}

function splitList(text: string): string[] {
  return text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

const TRUE_WORDS = new Set(['1', 'true', 'yes', 'on']);
const FALSE_WORDS = new Set(['0', 'false', 'no', 'off', '']);

/**
 * Reads and checks the configuration from parsed flags and the environment.
 *
 * @throws ConfigError with the exact reason, naming the flag or variable.
 */
export function parseServeConfig(flags: RawFlags, env: NodeJS.ProcessEnv): ServerConfig {
  const raw = (spec: OptionSpec): RawValue | undefined => {
    const fromFlag = flags[flagProperty(spec.flag)];
    if (fromFlag !== undefined && !(Array.isArray(fromFlag) && fromFlag.length === 0)) {
      return { source: spec.flag, value: fromFlag };
    }
    const fromEnv = env[spec.env];
    if (fromEnv !== undefined && fromEnv !== '') return { source: spec.env, value: fromEnv };
    return undefined;
  };
  const specOf = (flag: ServeFlag): OptionSpec =>
    SERVE_OPTIONS.find((spec) => spec.flag === flag) as OptionSpec;
  const textOf = (flag: ServeFlag): { source: string; text: string } | undefined => {
    const spec = specOf(flag);
    const found = raw(spec);
    if (found === undefined) {
      return spec.defaultText === undefined
        ? undefined
        : { source: spec.flag, text: spec.defaultText };
    }
    const { source, value } = found;
    if (typeof value === 'boolean') return { source, text: String(value) };
    return { source, text: typeof value === 'string' ? value : value.join(',') };
  };

  const integer = (flag: ServeFlag, min = 1): number => {
    const { source, text } = textOf(flag) as { source: string; text: string };
    const value = /^\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
    if (!Number.isSafeInteger(value) || value < min) {
      const what = min === 0 ? 'a non-negative integer' : 'a positive integer';
      throw new ConfigError(`${source} must be ${what}, got "${text}"`);
    }
    return value;
  };
  const duration = (flag: ServeFlag): number | undefined => {
    const found = textOf(flag);
    if (!found) return undefined;
    const ms = parseDuration(found.text);
    if (ms === null || ms <= 0) {
      throw new ConfigError(
        `${found.source} must be a duration like 500ms, 30s, 5m or 1h, got "${found.text}"`,
      );
    }
    return ms;
  };
  const size = (flag: ServeFlag): number => {
    const { source, text } = textOf(flag) as { source: string; text: string };
    const bytes = parseSize(text);
    if (bytes === null || bytes <= 0) {
      throw new ConfigError(`${source} must be a size like 65536, 64KiB or 1MiB, got "${text}"`);
    }
    return bytes;
  };
  const string = (flag: ServeFlag): string | undefined => {
    const found = textOf(flag);
    return found === undefined ? undefined : found.text.trim();
  };
  const list = (flag: ServeFlag): { source: string; items: string[] } => {
    const found = raw(specOf(flag));
    if (found === undefined) return { source: flag, items: [] };
    const { source, value } = found;
    const parts = typeof value === 'string' ? [value] : Array.isArray(value) ? value : [];
    return { source, items: parts.flatMap((part) => splitList(part)) };
  };

  // --port
  const portText = textOf('--port') as { source: string; text: string };
  const port = /^\d{1,5}$/.test(portText.text.trim()) ? Number(portText.text.trim()) : NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new ConfigError(
      `${portText.source} must be an integer from 0 to 65535, got "${portText.text}"`,
    );
  }
  const host = string('--host') as string;
  if (host === '') throw new ConfigError('--host must not be empty');

  // --dev
  const devRaw = raw(specOf('--dev'));
  let dev = false;
  if (devRaw !== undefined) {
    if (typeof devRaw.value === 'boolean') dev = devRaw.value;
    else {
      const word = String(devRaw.value).trim().toLowerCase();
      if (TRUE_WORDS.has(word)) dev = true;
      else if (!FALSE_WORDS.has(word)) {
        throw new ConfigError(
          `${devRaw.source} must be true or false, got "${String(devRaw.value)}"`,
        );
      }
    }
  }
  const generated: ServerConfig['generated'] = {};

  // JWT
  const jwtSecretRaw = raw(specOf('--jwt-secret'));
  let secret = typeof jwtSecretRaw?.value === 'string' ? jwtSecretRaw.value : undefined;
  // Not trimmed: a PEM keeps its final newline.
  const publicKeyText = textOf('--jwt-public-key')?.text;
  const jwksUrl = string('--jwks-url');
  const keySources = [secret, publicKeyText, jwksUrl].filter((value) => value !== undefined);
  if (keySources.length > 1) {
    throw new ConfigError('give only one of --jwt-secret, --jwt-public-key and --jwks-url');
  }
  if (secret !== undefined && new TextEncoder().encode(secret).length < MIN_SECRET_BYTES) {
    throw new ConfigError(
      `${jwtSecretRaw?.source ?? '--jwt-secret'} must be at least ${MIN_SECRET_BYTES} bytes`,
    );
  }
  if (keySources.length === 0) {
    if (!dev) {
      throw new ConfigError(
        'a user token key is required: --jwt-secret, --jwt-public-key or --jwks-url (or --dev)',
      );
    }
    secret = randomBytes(32).toString('base64url');
    generated.jwtSecret = secret;
  }
  let publicKey: string | undefined;
  if (publicKeyText !== undefined) {
    if (publicKeyText.trimStart().startsWith('-----BEGIN')) publicKey = publicKeyText;
    else {
      try {
        publicKey = readFileSync(publicKeyText.trim(), 'utf8');
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
        throw new ConfigError(
          `--jwt-public-key is neither a PEM key nor a readable file: "${publicKeyText}" (${code})`,
        );
      }
    }
  }
  const leewayMs = duration('--jwt-leeway') as number;
  if (leewayMs % 1000 !== 0) {
    throw new ConfigError(
      `${textOf('--jwt-leeway')?.source ?? '--jwt-leeway'} must be a whole number of seconds, got "${textOf('--jwt-leeway')?.text ?? ''}"`,
    );
  }
  const algorithms = list('--jwt-algorithms').items;
  const issuer = string('--jwt-issuer');
  const audience = string('--jwt-audience');
  const jwt: JwtAuthenticatorOptions = {
    ...(secret !== undefined ? { secret } : {}),
    ...(publicKey !== undefined ? { publicKey } : {}),
    ...(jwksUrl !== undefined ? { jwksUrl } : {}),
    ...(algorithms.length > 0 ? { algorithms } : {}),
    ...(issuer ? { issuer } : {}),
    ...(audience ? { audience } : {}),
    leewaySeconds: leewayMs / 1000,
  };
  try {
    // Checks the key, the URL and the algorithms now rather than at the first handshake.
    createJwtAuthenticator(jwt);
  } catch (error) {
    throw new ConfigError(`invalid user token settings: ${(error as Error).message}`);
  }

  // API keys
  const keys = list('--api-key');
  keys.items.forEach((key, index) => {
    const which = `${keys.source} #${index + 1}`;
    if (key.length < MIN_API_KEY_LENGTH || key.length > MAX_API_KEY_LENGTH) {
      throw new ConfigError(
        `${which}: an API key must be ${MIN_API_KEY_LENGTH}-${MAX_API_KEY_LENGTH} characters`,
      );
    }
    if (/\s/.test(key)) throw new ConfigError(`${which}: an API key must not contain whitespace`);
    if (looksLikeJwt(key)) throw new ConfigError(`${which}: an API key must not look like a JWT`);
  });
  const apiKeys = [...keys.items];
  if (apiKeys.length === 0) {
    if (!dev) {
      throw new ConfigError(
        'at least one API key is required: --api-key or AGENTSOCKET_API_KEYS (or --dev)',
      );
    }
    generated.apiKey = ApiKeys.generate();
    apiKeys.push(generated.apiKey);
  }

  // Redis
  const redisRaw = raw(specOf('--redis'));
  let redisUrl: string | null = null;
  if (redisRaw !== undefined) {
    const text = String(redisRaw.value).trim();
    let protocol = '';
    try {
      protocol = new URL(text).protocol;
    } catch {
      // Reported below; the URL may hold a password, so it is not repeated.
    }
    if (protocol !== 'redis:' && protocol !== 'rediss:') {
      throw new ConfigError(`${redisRaw.source} must be a redis:// or rediss:// URL`);
    }
    redisUrl = text;
  }

  // Origins and proxies
  const origins = list('--allowed-origins');
  for (const origin of origins.items) {
    if (origin === '*') continue;
    let parsed: string | null = null;
    try {
      parsed = new URL(origin).origin;
    } catch {
      parsed = null;
    }
    if (parsed !== origin) {
      throw new ConfigError(
        `${origins.source}: "${origin}" is not an origin like https://app.example.com`,
      );
    }
  }
  const proxies = list('--trusted-proxies');
  for (const address of proxies.items) {
    if (isIP(address) === 0) {
      throw new ConfigError(`${proxies.source}: "${address}" is not an IP address`);
    }
  }

  // Timing
  const heartbeatMs = duration('--heartbeat') as number;
  const heartbeatTimeoutMs = duration('--heartbeat-timeout') ?? heartbeatMs * 2;
  if (heartbeatTimeoutMs <= heartbeatMs) {
    throw new ConfigError('--heartbeat-timeout must be longer than --heartbeat');
  }

  // Log level and policy
  const levelText = textOf('--log-level') as { source: string; text: string };
  const logLevel = levelText.text.trim().toLowerCase() as LevelWithSilent;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(
      `${levelText.source} must be one of ${LOG_LEVELS.join(', ')}, got "${levelText.text}"`,
    );
  }
  const policyText = textOf('--user-connection-policy') as { source: string; text: string };
  const policy = policyText.text.trim();
  if (policy !== 'reject' && policy !== 'evict-oldest') {
    throw new ConfigError(
      `${policyText.source} must be reject or evict-oldest, got "${policyText.text}"`,
    );
  }

  const limits: GatewayLimits = {
    ...DEFAULT_LIMITS,
    maxConnections: integer('--max-connections'),
    maxConnectionsPerUser: integer('--max-connections-per-user'),
    userConnectionPolicy: policy,
    maxConnectionsPerIp: integer('--max-connections-per-ip'),
    handshakesPerIpPerSecond: integer('--handshakes-per-ip'),
    maxFrameBytes: size('--max-frame-size'),
    framesPerSecond: integer('--frames-per-second'),
    frameBurst: integer('--frame-burst'),
    maxBufferedBytes: size('--max-buffered'),
    maxDataBytes: size('--max-data-size'),
    maxBodyBytes: size('--max-body-size'),
    maxBatchEvents: integer('--max-batch-events'),
    handshakeTimeoutMs: duration('--handshake-timeout') as number,
  };
  if (limits.maxDataBytes > limits.maxBodyBytes) {
    throw new ConfigError('--max-data-size must not be larger than --max-body-size');
  }

  return {
    port,
    host,
    jwt,
    apiKeys,
    redisUrl,
    allowedOrigins: origins.items,
    trustedProxies: proxies.items,
    historySize: integer('--history-size'),
    historyTtlMs: duration('--history-ttl') as number,
    heartbeatMs,
    heartbeatTimeoutMs,
    ackTimeoutMs: duration('--ack-timeout') as number,
    shutdownTimeoutMs: duration('--shutdown-timeout') as number,
    limits,
    logLevel,
    dev,
    generated,
  };
}
