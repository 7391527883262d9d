import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { flagProperty, type RawFlags } from '../../src/options/option-spec.js';
import { OptionError, parseDuration, parseSize } from '../../src/options/validators.js';
import { parseServeConfig } from '../../src/server/config.js';
import { SERVE_OPTIONS } from '../../src/server/serve-options.js';

const SECRET = 's'.repeat(32);
const KEY = 'k'.repeat(16);
/** The least a production config needs. */
const BASE: RawFlags = { jwtSecret: SECRET, apiKey: [KEY] };

function parse(flags: RawFlags, env: NodeJS.ProcessEnv = {}) {
  return parseServeConfig({ ...BASE, ...flags }, env);
}

function message(flags: RawFlags, env: NodeJS.ProcessEnv = {}, base: RawFlags = BASE): string {
  try {
    parseServeConfig({ ...base, ...flags }, env);
  } catch (error) {
    expect(error).toBeInstanceOf(OptionError);
    return (error as Error).message;
  }
  throw new Error('expected an OptionError');
}

describe('parseDuration and parseSize', () => {
  it('read units', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('2d')).toBe(172_800_000);
    expect(parseDuration('10')).toBeNull();
    expect(parseDuration('1.5s')).toBeNull();
    expect(parseDuration('-1s')).toBeNull();
    expect(parseSize('65536')).toBe(65_536);
    expect(parseSize('64KiB')).toBe(65_536);
    expect(parseSize('1mib')).toBe(1_048_576);
    expect(parseSize('1GiB')).toBe(1_073_741_824);
    expect(parseSize('1MB')).toBeNull();
    expect(parseSize('x')).toBeNull();
  });
});

describe('parseServeConfig', () => {
  it('applies the defaults of PROTOCOL.md', () => {
    const config = parseServeConfig(BASE, {});
    expect(config).toMatchObject({
      port: 8080,
      host: '0.0.0.0',
      apiKeys: [KEY],
      redisUrl: null,
      allowedOrigins: [],
      trustedProxies: [],
      historySize: 1000,
      historyTtlMs: 3_600_000,
      heartbeatMs: 25_000,
      heartbeatTimeoutMs: 50_000,
      ackTimeoutMs: 10_000,
      shutdownTimeoutMs: 30_000,
      logLevel: 'info',
      dev: false,
      generated: {},
      jwt: { secret: SECRET, leewaySeconds: 5 },
      limits: {
        maxConnections: 100_000,
        maxConnectionsPerUser: 20,
        userConnectionPolicy: 'reject',
        maxConnectionsPerIp: 1000,
        handshakesPerIpPerSecond: 50,
        maxFrameBytes: 65_536,
        framesPerSecond: 100,
        frameBurst: 200,
        maxBufferedBytes: 4_194_304,
        maxDataBytes: 262_144,
        maxBodyBytes: 1_048_576,
        maxBatchEvents: 1000,
        handshakeTimeoutMs: 10_000,
      },
    });
  });

  it('reads every flag', () => {
    const config = parse({
      port: '0',
      host: '127.0.0.1',
      jwtAlgorithms: 'HS256,HS512',
      jwtIssuer: 'https://id.example',
      jwtAudience: 'agents',
      jwtLeeway: '2s',
      apiKey: [KEY, 'm'.repeat(20)],
      redis: 'redis://:pw@127.0.0.1:6390/0',
      allowedOrigins: 'https://a.example, http://localhost:3000',
      trustedProxies: '10.0.0.1,::1',
      historySize: '50',
      historyTtl: '5m',
      heartbeat: '1s',
      heartbeatTimeout: '3s',
      ackTimeout: '500ms',
      handshakeTimeout: '2s',
      shutdownTimeout: '4s',
      maxConnections: '9',
      maxConnectionsPerUser: '3',
      userConnectionPolicy: 'evict-oldest',
      maxConnectionsPerIp: '7',
      handshakesPerIp: '5',
      maxFrameSize: '1KiB',
      framesPerSecond: '11',
      frameBurst: '22',
      maxBuffered: '1MiB',
      maxDataSize: '2KiB',
      maxBodySize: '4KiB',
      maxBatchEvents: '8',
      logLevel: 'debug',
      dev: true,
    });
    expect(config).toMatchObject({
      port: 0,
      host: '127.0.0.1',
      apiKeys: [KEY, 'm'.repeat(20)],
      redisUrl: 'redis://:pw@127.0.0.1:6390/0',
      allowedOrigins: ['https://a.example', 'http://localhost:3000'],
      trustedProxies: ['10.0.0.1', '::1'],
      historySize: 50,
      historyTtlMs: 300_000,
      heartbeatMs: 1000,
      heartbeatTimeoutMs: 3000,
      ackTimeoutMs: 500,
      shutdownTimeoutMs: 4000,
      logLevel: 'debug',
      dev: true,
      generated: {},
      jwt: {
        secret: SECRET,
        algorithms: ['HS256', 'HS512'],
        issuer: 'https://id.example',
        audience: 'agents',
        leewaySeconds: 2,
      },
      limits: {
        maxConnections: 9,
        maxConnectionsPerUser: 3,
        userConnectionPolicy: 'evict-oldest',
        maxConnectionsPerIp: 7,
        handshakesPerIpPerSecond: 5,
        maxFrameBytes: 1024,
        framesPerSecond: 11,
        frameBurst: 22,
        maxBufferedBytes: 1_048_576,
        maxDataBytes: 2048,
        maxBodyBytes: 4096,
        maxBatchEvents: 8,
        handshakeTimeoutMs: 2000,
      },
    });
  });

  it('reads every environment variable, and a flag wins over its variable', () => {
    const env: NodeJS.ProcessEnv = {
      PORT: '9000',
      HOST: '::',
      AGENTSOCKET_JWT_SECRET: 'e'.repeat(40),
      AGENTSOCKET_JWT_ALGORITHMS: 'HS384',
      AGENTSOCKET_JWT_ISSUER: 'iss',
      AGENTSOCKET_JWT_AUDIENCE: 'aud',
      AGENTSOCKET_JWT_LEEWAY: '3s',
      AGENTSOCKET_API_KEYS: `${KEY}, ${'n'.repeat(16)}`,
      AGENTSOCKET_REDIS_URL: 'rediss://cache.example:6380',
      AGENTSOCKET_ALLOWED_ORIGINS: '*',
      AGENTSOCKET_TRUSTED_PROXIES: '127.0.0.1',
      AGENTSOCKET_HISTORY_SIZE: '10',
      AGENTSOCKET_HISTORY_TTL: '2h',
      AGENTSOCKET_HEARTBEAT: '10s',
      AGENTSOCKET_HEARTBEAT_TIMEOUT: '15s',
      AGENTSOCKET_ACK_TIMEOUT: '1s',
      AGENTSOCKET_HANDSHAKE_TIMEOUT: '3s',
      AGENTSOCKET_SHUTDOWN_TIMEOUT: '1m',
      AGENTSOCKET_MAX_CONNECTIONS: '100',
      AGENTSOCKET_MAX_CONNECTIONS_PER_USER: '2',
      AGENTSOCKET_USER_CONNECTION_POLICY: 'evict-oldest',
      AGENTSOCKET_MAX_CONNECTIONS_PER_IP: '4',
      AGENTSOCKET_HANDSHAKES_PER_IP: '6',
      AGENTSOCKET_MAX_FRAME_SIZE: '2048',
      AGENTSOCKET_FRAMES_PER_SECOND: '12',
      AGENTSOCKET_FRAME_BURST: '24',
      AGENTSOCKET_MAX_BUFFERED: '2MiB',
      AGENTSOCKET_MAX_DATA_SIZE: '1KiB',
      AGENTSOCKET_MAX_BODY_SIZE: '8KiB',
      AGENTSOCKET_MAX_BATCH_EVENTS: '5',
      AGENTSOCKET_LOG_LEVEL: 'warn',
      AGENTSOCKET_DEV: 'true',
    };
    const config = parseServeConfig({}, env);
    expect(config).toMatchObject({
      port: 9000,
      host: '::',
      apiKeys: [KEY, 'n'.repeat(16)],
      redisUrl: 'rediss://cache.example:6380',
      allowedOrigins: ['*'],
      trustedProxies: ['127.0.0.1'],
      historySize: 10,
      historyTtlMs: 7_200_000,
      heartbeatMs: 10_000,
      heartbeatTimeoutMs: 15_000,
      ackTimeoutMs: 1000,
      shutdownTimeoutMs: 60_000,
      logLevel: 'warn',
      dev: true,
      generated: {},
      jwt: {
        secret: 'e'.repeat(40),
        algorithms: ['HS384'],
        issuer: 'iss',
        audience: 'aud',
        leewaySeconds: 3,
      },
      limits: {
        maxConnections: 100,
        maxConnectionsPerUser: 2,
        userConnectionPolicy: 'evict-oldest',
        maxConnectionsPerIp: 4,
        handshakesPerIpPerSecond: 6,
        maxFrameBytes: 2048,
        framesPerSecond: 12,
        frameBurst: 24,
        maxBufferedBytes: 2_097_152,
        maxDataBytes: 1024,
        maxBodyBytes: 8192,
        maxBatchEvents: 5,
        handshakeTimeoutMs: 3000,
      },
    });
    const flagged = parseServeConfig(
      { port: '7000', apiKey: ['f'.repeat(16)], logLevel: 'error', dev: false },
      env,
    );
    expect(flagged).toMatchObject({
      port: 7000,
      apiKeys: ['f'.repeat(16)],
      logLevel: 'error',
      dev: false,
    });
  });

  it('has one environment variable per flag, and every flag has a property', () => {
    const envs = SERVE_OPTIONS.map((spec) => spec.env);
    expect(new Set(envs).size).toBe(envs.length);
    expect(flagProperty('--max-connections-per-user')).toBe('maxConnectionsPerUser');
    expect(SERVE_OPTIONS.map((spec) => spec.flag)).toEqual(
      expect.arrayContaining([
        '--port',
        '--host',
        '--jwt-secret',
        '--jwt-public-key',
        '--jwks-url',
      ]),
    );
    expect(SERVE_OPTIONS.map((spec) => spec.flag)).toEqual(
      expect.arrayContaining(['--api-key', '--redis', '--allowed-origins', '--history-size']),
    );
    expect(SERVE_OPTIONS.map((spec) => spec.flag)).toEqual(
      expect.arrayContaining(['--history-ttl', '--trusted-proxies', '--log-level', '--dev']),
    );
  });

  it('reads a PEM public key inline or from a file', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const inline = parseServeConfig({ jwtPublicKey: pem, apiKey: [KEY] }, {});
    expect(inline.jwt.publicKey).toBe(pem);
    const file = join(mkdtempSync(join(tmpdir(), 'agentsocket-')), 'key.pem');
    writeFileSync(file, pem);
    const fromFile = parseServeConfig(
      {},
      { AGENTSOCKET_JWT_PUBLIC_KEY: file, AGENTSOCKET_API_KEYS: KEY },
    );
    expect(fromFile.jwt.publicKey).toBe(pem);
    expect(fromFile.jwt.secret).toBeUndefined();
    expect(message({ jwtPublicKey: '/nonexistent/key.pem', apiKey: [KEY] }, {}, {})).toBe(
      '--jwt-public-key is neither a PEM key nor a readable file: "/nonexistent/key.pem" (ENOENT)',
    );
  });

  it('generates a JWT secret and an API key in --dev when none is given', () => {
    const config = parseServeConfig({ dev: true }, {});
    const { jwtSecret, apiKey } = config.generated;
    expect(jwtSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(apiKey).toMatch(/^ask_[A-Za-z0-9_-]{43}$/);
    expect(config.jwt.secret).toBe(jwtSecret);
    expect(config.apiKeys).toEqual([apiKey]);
    // Fresh every time.
    expect(parseServeConfig({ dev: true }, {}).generated.jwtSecret).not.toBe(jwtSecret);
    // Given ones are kept, nothing generated.
    expect(parseServeConfig({ ...BASE, dev: true }, {}).generated).toEqual({});
  });

  it.each([
    [{ port: '65536' }, {}, '--port must be an integer from 0 to 65535, got "65536"'],
    [{}, { PORT: 'http' }, 'PORT must be an integer from 0 to 65535, got "http"'],
    [{ host: ' ' }, {}, '--host must not be empty'],
    [{ historySize: '0' }, {}, '--history-size must be a positive integer, got "0"'],
    [
      {},
      { AGENTSOCKET_HISTORY_SIZE: '1e3' },
      'AGENTSOCKET_HISTORY_SIZE must be a positive integer, got "1e3"',
    ],
    [
      { historyTtl: '10' },
      {},
      '--history-ttl must be a duration like 500ms, 30s, 5m or 1h, got "10"',
    ],
    [
      {},
      { AGENTSOCKET_ACK_TIMEOUT: '0s' },
      'AGENTSOCKET_ACK_TIMEOUT must be a duration like 500ms, 30s, 5m or 1h, got "0s"',
    ],
    [
      { heartbeat: '1s', heartbeatTimeout: '1s' },
      {},
      '--heartbeat-timeout must be longer than --heartbeat',
    ],
    [
      { jwtLeeway: '1500ms' },
      {},
      '--jwt-leeway must be a whole number of seconds like 0, 5s or 2m, got "1500ms"',
    ],
    [
      { maxBodySize: '1MB' },
      {},
      '--max-body-size must be a size like 65536, 64KiB or 1MiB, got "1MB"',
    ],
    [{ maxDataSize: '2MiB' }, {}, '--max-data-size must not be larger than --max-body-size'],
    [
      { maxConnectionsPerUser: '-1' },
      {},
      '--max-connections-per-user must be a positive integer, got "-1"',
    ],
    [
      { userConnectionPolicy: 'drop' },
      {},
      '--user-connection-policy must be reject or evict-oldest, got "drop"',
    ],
    [
      { logLevel: 'loud' },
      {},
      '--log-level must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    ],
    [{}, { AGENTSOCKET_DEV: 'maybe' }, 'AGENTSOCKET_DEV must be true or false, got "maybe"'],
    [
      { allowedOrigins: 'https://a.example/' },
      {},
      '--allowed-origins: "https://a.example/" is not an origin like https://app.example.com',
    ],
    [
      { trustedProxies: '10.0.0.1,proxy.local' },
      {},
      '--trusted-proxies: "proxy.local" is not an IP address',
    ],
    [{ jwtSecret: 'short' }, {}, '--jwt-secret must be at least 32 bytes'],
    [
      { jwksUrl: 'https://id.example/jwks.json' },
      {},
      'give only one of --jwt-secret, --jwt-public-key and --jwks-url',
    ],
    [{ jwtAlgorithms: 'none' }, {}, 'invalid user token settings: '],
    [{ apiKey: ['short'] }, {}, '--api-key #1: an API key must be 16-512 characters'],
    [
      { apiKey: [KEY, 'aaaaaa.bbbbbb.cccccc'] },
      {},
      '--api-key #2: an API key must not look like a JWT',
    ],
    [
      { apiKey: [] },
      { AGENTSOCKET_API_KEYS: `${KEY},has space inside it` },
      'AGENTSOCKET_API_KEYS #2: an API key must not contain whitespace',
    ],
    [{ redis: 'http://127.0.0.1:6379' }, {}, '--redis must be a redis:// or rediss:// URL'],
  ] as const)('refuses %j %j: %s', (flags, env, expected) => {
    const text = message(flags as RawFlags, env as NodeJS.ProcessEnv);
    if (expected.endsWith(': ')) expect(text.startsWith(expected)).toBe(true);
    else expect(text).toBe(expected);
  });

  it('takes a JWT leeway of zero, written 0, 0s or in the environment (issue 17)', () => {
    expect(parse({ jwtLeeway: '0' }).jwt.leewaySeconds).toBe(0);
    expect(parse({ jwtLeeway: '0s' }).jwt.leewaySeconds).toBe(0);
    expect(parse({}, { AGENTSOCKET_JWT_LEEWAY: '0' }).jwt.leewaySeconds).toBe(0);
    expect(parse({ jwtLeeway: '30' }).jwt.leewaySeconds).toBe(30);
    expect(parse({ jwtLeeway: '2m' }).jwt.leewaySeconds).toBe(120);
  });

  it('lets the coalescing threshold follow a lowered --max-buffered unless it is set', () => {
    expect(parse({}).limits.coalesceAboveBytes).toBe(256 * 1024);
    expect(parse({ maxBuffered: '64KiB' }).limits.coalesceAboveBytes).toBe(32 * 1024);
    expect(parse({ maxBuffered: '64KiB', coalesceAbove: '48KiB' }).limits.coalesceAboveBytes).toBe(
      48 * 1024,
    );
  });

  it('maps the token settings of the hardening issue onto the authenticator', () => {
    expect(parse({}).jwt.allowNoExp).toBeUndefined();
    expect(parse({}).jwt.maxLifetimeSeconds).toBeUndefined();
    expect(parse({ jwtAllowNoExp: true }).jwt.allowNoExp).toBe(true);
    expect(parse({ jwtMaxLifetime: '1h' }).jwt.maxLifetimeSeconds).toBe(3600);
    expect(parse({}, { AGENTSOCKET_JWT_MAX_LIFETIME: '900' }).jwt.maxLifetimeSeconds).toBe(900);
    expect(parse({ jwtMaxLifetime: '0' }).jwt.maxLifetimeSeconds).toBeUndefined();
    expect(parse({ maxDataDepth: '8' }).limits.maxDataDepth).toBe(8);
    expect(parse({}).limits.maxDataDepth).toBe(64);
    expect(message({ maxDataDepth: '0' })).toMatch(/--max-data-depth/);
  });

  it.each(
    SERVE_OPTIONS.filter((spec) => spec.kind === 'duration' || spec.kind === 'seconds').map(
      (spec) => [spec.flag] as const,
    ),
  )('%s: its error message shows only examples the setting accepts', (flag) => {
    const property = flagProperty(flag);
    // A heartbeat short enough that every example of --heartbeat-timeout is longer.
    const context: RawFlags = flag === '--heartbeat-timeout' ? { heartbeat: '1ms' } : {};
    const text = message({ ...context, [property]: 'forever' });
    const examples = /like (.+), got "forever"$/.exec(text)?.[1]?.split(/, | or /) ?? [];
    expect(examples.length, text).toBeGreaterThanOrEqual(3);
    for (const example of examples) {
      expect(() => parse({ ...context, [property]: example }), example).not.toThrow();
    }
  });

  it('reads the API key from AGENTSOCKET_API_KEY, the name publish reads, and the old name as an alias (issue 15)', () => {
    const other = 'o'.repeat(16);
    expect(parseServeConfig({ jwtSecret: SECRET }, { AGENTSOCKET_API_KEY: KEY }).apiKeys).toEqual([
      KEY,
    ]);
    expect(
      parseServeConfig({ jwtSecret: SECRET }, { AGENTSOCKET_API_KEYS: `${KEY},${other}` }).apiKeys,
    ).toEqual([KEY, other]);
    // The current name wins over the alias.
    expect(
      parseServeConfig(
        { jwtSecret: SECRET },
        { AGENTSOCKET_API_KEY: other, AGENTSOCKET_API_KEYS: KEY },
      ).apiKeys,
    ).toEqual([other]);
    const spec = SERVE_OPTIONS.find((option) => option.flag === '--api-key');
    expect(spec).toMatchObject({ env: 'AGENTSOCKET_API_KEY', aliases: ['AGENTSOCKET_API_KEYS'] });
  });

  it('requires a token key and an API key outside --dev', () => {
    expect(message({}, {}, { apiKey: [KEY] })).toBe(
      'a user token key is required: --jwt-secret, --jwt-public-key or --jwks-url (or --dev)',
    );
    expect(message({}, {}, { jwtSecret: SECRET })).toBe(
      'at least one API key is required: --api-key or AGENTSOCKET_API_KEY (or --dev)',
    );
  });

  it('never repeats a secret in a message', () => {
    const secretKey = 'topsecret value with spaces';
    expect(message({ apiKey: [secretKey] })).not.toContain('topsecret');
    expect(message({ redis: 'http://user:hunter2@host' })).not.toContain('hunter2');
    expect(message({ jwtSecret: 'hunter2' })).not.toContain('hunter2');
  });
});
