/**
 * The `agentsocket` command line (PROTOCOL.md section 6), black-box: `serve`
 * with its configuration errors, `--dev`, and the SIGTERM/SIGINT drain;
 * `token` and `publish` against a running server.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiKeys } from '../../src/auth/api-keys.js';
import { helpText, usage } from '../../src/options/option-spec.js';
import { SERVE_OPTIONS } from '../../src/server/serve-options.js';
import { runCli, startCliServer, type CliServer } from '../helpers/cli-process.js';
import { expectRefusal, TestClient } from '../helpers/test-client.js';
import { waitFor } from '../helpers/wait-for.js';

const SECRET = randomBytes(32).toString('base64url');
const API_KEY = ApiKeys.generate();
/** `AGENTSOCKET_API_KEYS`: the old name, still read as an alias of `AGENTSOCKET_API_KEY`. */
const ENV = { AGENTSOCKET_JWT_SECRET: SECRET, AGENTSOCKET_API_KEYS: API_KEY };

let servers: CliServer[] = [];
/** Credentials handed out by a test: none may appear in the server's logs. */
let credentials: string[] = [];

afterEach(async () => {
  for (const server of servers) {
    await server.stop('SIGKILL');
    // Everything but the --dev banner, which prints what --dev generated on purpose.
    const banner = /^agentsocket --dev: generated[\s\S]*?demo page: .*$/m;
    const output = server.stdout() + server.stderr().replace(banner, '');
    for (const secret of [SECRET, API_KEY, ...credentials]) expect(output).not.toContain(secret);
  }
  servers = [];
  credentials = [];
});

async function serve(args: string[] = [], env: Record<string, string> = ENV): Promise<CliServer> {
  const server = await startCliServer(args, env);
  servers.push(server);
  return server;
}

async function mint(userId: string, secret = SECRET): Promise<string> {
  const run = await runCli(['token', '--user', userId, '--ttl', '10m'], {
    AGENTSOCKET_JWT_SECRET: secret,
  });
  expect(run.code).toBe(0);
  const jwt = run.stdout.trim();
  credentials.push(jwt);
  return jwt;
}

async function statsOf(
  server: CliServer,
  key = API_KEY,
): Promise<{ events: { published: number } }> {
  const response = await fetch(`${server.url}/v1/stats`, {
    headers: { authorization: `Bearer ${key}` },
  });
  return (await response.json()) as { events: { published: number } };
}

describe('agentsocket serve: configuration', () => {
  it('exits 2 with the exact message for a bad flag or variable', async () => {
    const flag = await runCli(['serve', '--port', '70000'], ENV);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toBe(
      'agentsocket: --port must be an integer from 0 to 65535, got "70000"\n',
    );
    const variable = await runCli(['serve'], { ...ENV, AGENTSOCKET_HISTORY_TTL: 'forever' });
    expect(variable.code).toBe(2);
    expect(variable.stderr).toBe(
      'agentsocket: AGENTSOCKET_HISTORY_TTL must be a duration like 500ms, 30s, 5m or 1h, got "forever"\n',
    );
    const missing = await runCli(['serve'], { AGENTSOCKET_JWT_SECRET: SECRET });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('at least one API key is required');
    expect(missing.stderr).not.toContain(SECRET);
  });

  it('prints --help from the option schema: every flag, its variables and its default', async () => {
    const help = await runCli(['serve', '--help']);
    expect(help.code).toBe(0);
    // Commander wraps long lines; compare with the whitespace folded.
    const text = help.stdout.replace(/\s+/g, ' ');
    for (const spec of SERVE_OPTIONS) {
      expect(text, spec.flag).toContain(`${usage(spec)} ${helpText(spec)}`);
    }
    expect(text).toContain('(env AGENTSOCKET_API_KEY or AGENTSOCKET_API_KEYS)');
    expect(text).toContain('(env AGENTSOCKET_HISTORY_TTL, default 1h)');
  });

  it('starts with a JWT leeway of 0 and the API key in AGENTSOCKET_API_KEY, the name publish reads', async () => {
    const server = await serve([], {
      AGENTSOCKET_JWT_SECRET: SECRET,
      AGENTSOCKET_API_KEY: API_KEY,
      AGENTSOCKET_JWT_LEEWAY: '0',
    });
    expect((await statsOf(server)).events.published).toBe(0);
    // publish reads the same variable, and the old name as an alias.
    for (const name of ['AGENTSOCKET_API_KEY', 'AGENTSOCKET_API_KEYS']) {
      const run = await runCli(
        ['publish', '--url', server.url, '--user', 'u', '--event', 'note', '--no-critical'],
        { [name]: API_KEY },
      );
      expect(run.code, name).toBe(0);
    }
    expect((await statsOf(server)).events.published).toBe(2);
  });

  it('prints the bound URL of --port 0 in a parseable log line', async () => {
    const server = await serve();
    const listening = server.logRecords().find((record) => record.msg === 'listening');
    expect(listening?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(listening?.port).toBeGreaterThan(0);
    expect(server.logRecords().map((record) => record.msg)).toEqual(
      expect.arrayContaining(['starting', 'listening']),
    );
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
  });

  it('--dev generates a JWT secret and an API key, prints them once on stderr, never in logs', async () => {
    const server = await serve(['--dev'], {});
    const banner = await waitFor(() => /API key: +(\S+)/.exec(server.stderr()), {
      what: 'the dev banner',
    });
    const secret = /JWT secret: +(\S+)/.exec(server.stderr())?.[1] as string;
    const apiKey = banner[1] as string;
    credentials.push(secret, apiKey);
    expect(server.stderr().split(apiKey)).toHaveLength(2);
    // The generated key works, and so does a token minted with the generated secret.
    expect((await statsOf(server, apiKey)).events.published).toBe(0);
    const client = await TestClient.connect(server.wsUrl, {
      token: await mint('dev-user', secret),
    });
    expect((await client.welcome()).userId).toBe('dev-user');
    client.close();
    // The demo page is mounted.
    const page = await fetch(`${server.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
  });

  it('cuts off a client that never finishes its headers after --handshake-timeout', async () => {
    const server = await serve(['--handshake-timeout', '1s']);
    const { port } = new URL(server.url);
    const socket = connect(Number(port), '127.0.0.1');
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    let isClosed = false;
    void closed.then(() => (isClosed = true));
    await waitFor(() => isClosed, { timeoutMs: 5000, what: 'the server to close the socket' });
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  });

  it('serves no demo page without --dev', async () => {
    const server = await serve();
    const page = await fetch(`${server.url}/`);
    expect(page.status).toBe(404);
  });
});

describe('agentsocket token', () => {
  it('prints a token the server accepts for that user', async () => {
    const server = await serve();
    const client = await TestClient.connect(server.wsUrl, { token: await mint('cli-user') });
    expect((await client.welcome()).userId).toBe('cli-user');
    client.close();
  });

  it('exits 2 for a missing secret, a bad ttl or a bad user id', async () => {
    const noSecret = await runCli(['token', '--user', 'a']);
    expect(noSecret).toMatchObject({
      code: 2,
      stderr: 'agentsocket: --secret (or AGENTSOCKET_JWT_SECRET) is required\n',
    });
    const ttl = await runCli(['token', '--user', 'a', '--secret', SECRET, '--ttl', '10']);
    expect(ttl).toMatchObject({
      code: 2,
      stderr:
        'agentsocket: --ttl must be a whole number of seconds like 30s, 15m or 1h, got "10"\n',
    });
    const user = await runCli(['token', '--user', 'a b', '--secret', SECRET]);
    expect(user.code).toBe(2);
    expect(user.stderr).toContain('userId must be');
  });
});

describe('agentsocket publish', () => {
  it('publishes through the HTTP API and prints the JSON answer', async () => {
    // A tool_completed alone is a run fragment: the run grammar would refuse it.
    const server = await serve(['--run-grammar', 'off']);
    const client = await TestClient.connect(server.wsUrl, {
      token: await mint('target'),
      autoAck: true,
    });
    const run = await runCli([
      'publish',
      '--url',
      server.url,
      '--api-key',
      API_KEY,
      '--user',
      'target',
      '--event',
      'tool_completed',
      '--run-id',
      'r9',
      '--data',
      '{"toolCallId":"t1","tool":"search","result":[1,2]}',
      '--critical',
      '--wait',
      '5000',
    ]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ seq: 1, delivered: 1 });
    const [frame] = await client.waitForEvents(1);
    expect(frame).toMatchObject({
      seq: 1,
      event: 'tool_completed',
      runId: 'r9',
      critical: true,
      data: { toolCallId: 't1', tool: 'search', result: [1, 2] },
    });
    client.close();
    // The API key can come from the environment.
    const fromEnv = await runCli(
      ['publish', '--url', server.url, '--user', 'target', '--event', 'note', '--no-critical'],
      { AGENTSOCKET_API_KEY: API_KEY },
    );
    expect(fromEnv.code).toBe(0);
    expect(JSON.parse(fromEnv.stdout)).toMatchObject({ seq: 2 });
  });

  it('exits 1 and prints the error body when the server refuses', async () => {
    const server = await serve();
    const refused = await runCli([
      'publish',
      '--url',
      server.url,
      '--api-key',
      'not-the-key-at-all-123',
      '--user',
      'u',
      '--event',
      'e',
    ]);
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.stdout)).toMatchObject({ error: { code: 'unauthorized' } });
    const invalid = await runCli([
      'publish',
      '--url',
      server.url,
      '--api-key',
      API_KEY,
      '--user',
      'u',
      '--event',
      'Bad Name',
    ]);
    expect(invalid.code).toBe(1);
    expect(JSON.parse(invalid.stdout)).toMatchObject({
      error: { code: 'bad_request', field: 'event' },
    });
  });

  it('exits 2 for bad usage and 1 for an unreachable server', async () => {
    const base = ['publish', '--api-key', API_KEY, '--user', 'u', '--event', 'e'];
    const data = await runCli([...base, '--data', '{oops']);
    expect(data).toMatchObject({ code: 2, stderr: 'agentsocket: --data must be JSON\n' });
    const wait = await runCli([...base, '--wait', '31000']);
    expect(wait).toMatchObject({
      code: 2,
      stderr: 'agentsocket: --wait must be an integer number of ms from 0 to 30000\n',
    });
    const missingEvent = await runCli(['publish', '--api-key', API_KEY, '--user', 'u']);
    expect(missingEvent.code).toBe(2);
    const unreachable = await runCli([...base, '--url', 'http://127.0.0.1:1']);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/^agentsocket: cannot reach http:\/\/127\.0\.0\.1:1: /);
  });
});

describe('drain on SIGTERM and SIGINT', () => {
  it('SIGTERM: 503 for new work, pending publishes finish, connections close with 1001, exit 0', async () => {
    const server = await serve(['--log-level', 'debug']);
    const client = await TestClient.connect(server.wsUrl, { token: await mint('drained') });
    const token = await mint('latecomer');
    // A publish that waits for a user nobody connects as: it holds the drain open.
    const pending = fetch(`${server.url}/v1/users/absent/events?wait=5000`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ event: 'last-words' }),
    });
    await waitFor(async () => (await statsOf(server)).events.published === 1, {
      what: 'the publish to be accepted',
    });
    server.child.kill('SIGTERM');
    await waitFor(async () => (await fetch(`${server.url}/readyz`)).status === 503, {
      what: '/readyz to answer 503',
    });
    const ready = (await (await fetch(`${server.url}/readyz`)).json()) as { reasons: string[] };
    expect(ready.reasons).toContain('draining');
    // New handshakes and new publishes are refused while draining.
    const handshake = await expectRefusal(server.wsUrl, { token });
    expect(handshake.status).toBe(503);
    expect(handshake.body.error.code).toBe('unavailable');
    const refused = await fetch(`${server.url}/v1/users/x/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ event: 'e' }),
    });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    // The accepted publish finishes with its seq.
    const answer = await pending;
    expect(answer.status).toBe(202);
    expect(await answer.json()).toMatchObject({ seq: 1, delivered: 0 });
    expect((await client.waitForClose(10_000)).code).toBe(1001);
    expect(await server.exited).toBe(0);
    const messages = server.logRecords().map((record) => record.msg);
    expect(messages).toEqual(
      expect.arrayContaining(['signal received: draining', 'shutting down', 'stopped']),
    );
  });

  it('SIGINT drains the same way', async () => {
    const server = await serve();
    const clients = await Promise.all(
      ['a', 'b'].map(async (user) => TestClient.connect(server.wsUrl, { token: await mint(user) })),
    );
    expect(await server.stop('SIGINT')).toBe(0);
    for (const client of clients) expect((await client.waitForClose()).code).toBe(1001);
  });
});
