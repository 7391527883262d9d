/**
 * The configuration of `agentsocket serve` (PROTOCOL.md section 6): every
 * option of `SERVE_OPTIONS` read by the reader of its kind, then the rules
 * that tie options together (one token key, an API key outside `--dev`,
 * heartbeat timeout over heartbeat, data under body). A flag wins over its
 * variable; a variable wins over the default.
 *
 * Messages name where the bad value came from (`--port` or `PORT`) and never
 * repeat a secret (JWT secret, API key, Redis URL with a password).
 */
import { randomBytes } from 'node:crypto';
import type { LevelWithSilent } from 'pino';
import { ApiKeys } from '../auth/api-keys.js';
import {
  createJwtAuthenticator,
  MIN_SECRET_BYTES,
  type JwtAuthenticatorOptions,
} from '../auth/jwt-authenticator.js';
import type { RunGrammarMode } from '../broker/stream-engine.js';
import {
  DEFAULT_LIMITS,
  defaultCoalesceAboveBytes,
  type GatewayLimits,
} from '../gateway/options.js';
import { readOptions, type OptionValues, type RawFlags } from '../options/option-spec.js';
import { OptionError } from '../options/validators.js';
import { API_KEY_OPTION, SERVE_OPTIONS } from './serve-options.js';

export interface ServerConfig {
  port: number;
  host: string;
  /** Options of `createJwtAuthenticator`, checked. */
  jwt: JwtAuthenticatorOptions;
  apiKeys: string[];
  /** `redis://` URL, or null for the in-memory engine. May hold a password: never log it. */
  redisUrl: string | null;
  /** Seed URLs of a Redis Cluster (`--redis-cluster`), or empty. Never both this and `redisUrl`. */
  redisCluster: string[];
  /** Empty: any origin. */
  allowedOrigins: string[];
  trustedProxies: string[];
  historySize: number;
  historyTtlMs: number;
  runGrammar: RunGrammarMode;
  runTtlMs: number;
  runSnapshotMaxBytes: number;
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

type ServeValues = OptionValues<typeof SERVE_OPTIONS>;

/**
 * The user-token settings: exactly one key (generated in `--dev` when none is
 * given), checked by building the authenticator now rather than at the first
 * handshake.
 */
function readJwt(
  values: ServeValues,
  sources: Readonly<Record<string, string>>,
  generated: ServerConfig['generated'],
): JwtAuthenticatorOptions {
  const { jwtPublicKey: publicKey, jwksUrl } = values;
  let secret = values.jwtSecret;
  const keySources = [secret, publicKey, jwksUrl].filter((value) => value !== undefined);
  if (keySources.length > 1) {
    throw new OptionError('give only one of --jwt-secret, --jwt-public-key and --jwks-url');
  }
  if (secret !== undefined && new TextEncoder().encode(secret).length < MIN_SECRET_BYTES) {
    throw new OptionError(`${sources.jwtSecret} must be at least ${MIN_SECRET_BYTES} bytes`);
  }
  if (keySources.length === 0) {
    if (!values.dev) {
      throw new OptionError(
        'a user token key is required: --jwt-secret, --jwt-public-key or --jwks-url (or --dev)',
      );
    }
    secret = randomBytes(32).toString('base64url');
    generated.jwtSecret = secret;
  }
  const jwt: JwtAuthenticatorOptions = {
    ...(secret !== undefined ? { secret } : {}),
    ...(publicKey !== undefined ? { publicKey } : {}),
    ...(jwksUrl !== undefined ? { jwksUrl } : {}),
    ...(values.jwtAlgorithms.length > 0 ? { algorithms: values.jwtAlgorithms } : {}),
    ...(values.jwtIssuer !== undefined ? { issuer: values.jwtIssuer } : {}),
    ...(values.jwtAudience !== undefined ? { audience: values.jwtAudience } : {}),
    leewaySeconds: values.jwtLeewaySeconds,
    // 0 (like leaving it out) means no maximum.
    ...(values.jwtMaxLifetimeSeconds !== undefined && values.jwtMaxLifetimeSeconds > 0
      ? { maxLifetimeSeconds: values.jwtMaxLifetimeSeconds }
      : {}),
    ...(values.jwtAllowNoExp ? { allowNoExp: true } : {}),
  };
  try {
    createJwtAuthenticator(jwt);
  } catch (error) {
    throw new OptionError(`invalid user token settings: ${(error as Error).message}`);
  }
  return jwt;
}

/**
 * Reads and checks the configuration from parsed flags and the environment.
 *
 * @throws OptionError with the exact reason, naming the flag or variable.
 */
export function parseServeConfig(flags: RawFlags, env: NodeJS.ProcessEnv): ServerConfig {
  const { values, sources } = readOptions(SERVE_OPTIONS, flags, env);
  const generated: ServerConfig['generated'] = {};
  const jwt = readJwt(values, sources, generated);

  const apiKeys = [...values.apiKeys];
  if (apiKeys.length === 0) {
    if (!values.dev) {
      throw new OptionError(
        `at least one API key is required: ${API_KEY_OPTION.flag} or ${API_KEY_OPTION.env} (or --dev)`,
      );
    }
    generated.apiKey = ApiKeys.generate();
    apiKeys.push(generated.apiKey);
  }

  if (values.redisCluster.length > 0) {
    if (values.redisUrl !== undefined) {
      throw new OptionError('--redis and --redis-cluster cannot be used together: give one');
    }
    for (const url of values.redisCluster) {
      // Not repeated: a URL may hold a password.
      if (!/^rediss?:\/\/[^/]/.test(url)) {
        throw new OptionError('--redis-cluster: every URL must be a redis:// or rediss:// URL');
      }
    }
  }

  const heartbeatTimeoutMs = values.heartbeatTimeoutMs ?? values.heartbeatMs * 2;
  if (heartbeatTimeoutMs <= values.heartbeatMs) {
    throw new OptionError('--heartbeat-timeout must be longer than --heartbeat');
  }
  if (values.maxDataBytes > values.maxBodyBytes) {
    throw new OptionError('--max-data-size must not be larger than --max-body-size');
  }

  return {
    port: values.port,
    host: values.host,
    jwt,
    apiKeys,
    redisUrl: values.redisUrl ?? null,
    redisCluster: values.redisCluster,
    allowedOrigins: values.allowedOrigins,
    trustedProxies: values.trustedProxies,
    historySize: values.historySize,
    historyTtlMs: values.historyTtlMs,
    runGrammar: values.runGrammar,
    runTtlMs: values.runTtlMs,
    runSnapshotMaxBytes: values.runSnapshotMaxBytes,
    heartbeatMs: values.heartbeatMs,
    heartbeatTimeoutMs,
    ackTimeoutMs: values.ackTimeoutMs,
    shutdownTimeoutMs: values.shutdownTimeoutMs,
    limits: {
      ...DEFAULT_LIMITS,
      maxConnections: values.maxConnections,
      maxConnectionsPerUser: values.maxConnectionsPerUser,
      userConnectionPolicy: values.userConnectionPolicy,
      maxConnectionsPerIp: values.maxConnectionsPerIp,
      handshakesPerIpPerSecond: values.handshakesPerIpPerSecond,
      maxFrameBytes: values.maxFrameBytes,
      framesPerSecond: values.framesPerSecond,
      frameBurst: values.frameBurst,
      maxBufferedBytes: values.maxBufferedBytes,
      // Left at its default, it follows a lowered --max-buffered.
      coalesceAboveBytes:
        values.coalesceAboveBytes === DEFAULT_LIMITS.coalesceAboveBytes
          ? defaultCoalesceAboveBytes(values.maxBufferedBytes)
          : values.coalesceAboveBytes,
      runSnapshotThreshold: values.runSnapshotThreshold,
      maxDataBytes: values.maxDataBytes,
      maxDataDepth: values.maxDataDepth,
      maxBodyBytes: values.maxBodyBytes,
      maxBatchEvents: values.maxBatchEvents,
      maxPendingWaits: values.maxPendingWaits,
      maxPendingWaitsPerUser: values.maxPendingWaitsPerUser,
      handshakeTimeoutMs: values.handshakeTimeoutMs,
    },
    logLevel: values.logLevel,
    dev: values.dev,
    generated,
  };
}
