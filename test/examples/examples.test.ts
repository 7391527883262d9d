/**
 * The examples of examples/, run as a user would run them, against a real
 * gateway on a free port, with a real WebSocket client checking what arrives:
 * - python-publisher/publish.py (python3, standard library only) against the
 *   CLI server;
 * - node-backend/server.mjs, copied into a temp app whose `agentsocket`
 *   dependency is this repository's build.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiKeys } from '../../src/auth/api-keys.js';
import { mintDevToken } from '../../src/auth/dev-token.js';
import type { EventFrame } from '../../src/protocol/frames.js';
import { startCliServer, type CliServer } from '../helpers/cli-process.js';
import { freePort } from '../helpers/free-port.js';
import { REPO_ROOT } from '../helpers/packed-package.js';
import { TestClient } from '../helpers/test-client.js';
import { waitFor } from '../helpers/wait-for.js';

const SECRET = randomBytes(32).toString('base64url');
const API_KEY = ApiKeys.generate();
const EXAMPLES = join(REPO_ROOT, 'examples');

/** The run both examples publish: the event names, in order. */
const RUN = [
  'agent_started',
  'agent_thinking',
  'tool_executing',
  'tool_completed',
  'token',
  'token',
  'token',
  'agent_completed',
];

let servers: CliServer[] = [];
let children: ChildProcess[] = [];
let dirs: string[] = [];
afterEach(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  for (const server of servers) await server.stop('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  servers = [];
  children = [];
  dirs = [];
});

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end with only `env` (and PATH) in its environment. */
function runToEnd(command: string, args: string[], env: Record<string, string>): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The run's events as the client saw them: name, runId, seq. */
const shape = (events: EventFrame[]): Array<[string, string | undefined, number]> =>
  events.map((e) => [e.event, e.runId, e.seq]);

const pythonMissing = spawnSync('python3', ['--version'], { stdio: 'ignore' }).status !== 0;

describe.skipIf(pythonMissing)('examples/python-publisher/publish.py', () => {
  const script = join(EXAMPLES, 'python-publisher', 'publish.py');

  async function serve(): Promise<CliServer> {
    const server = await startCliServer([], {
      AGENTSOCKET_JWT_SECRET: SECRET,
      AGENTSOCKET_API_KEYS: API_KEY,
    });
    servers.push(server);
    return server;
  }

  it('publishes a run, single events then a batch: alice receives it whole, in order', async () => {
    const server = await serve();
    const alice = await TestClient.connect(server.wsUrl, {
      token: await mintDevToken({ secret: SECRET, userId: 'alice', ttlSeconds: 600 }),
      autoAck: true,
    });
    const env = { AGENTSOCKET_URL: server.url, AGENTSOCKET_API_KEY: API_KEY };
    const first = await runToEnd('python3', [script, 'alice', 'run-py'], env);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const events = await alice.waitForEvents(RUN.length);
    expect(shape(events)).toEqual(RUN.map((name, i) => [name, 'run-py', i + 1]));
    const tokens = events
      .filter((e) => e.event === 'token')
      .map((e) => (e.data as { t: string }).t);
    expect(events.at(-1)?.data).toEqual({ status: 'succeeded', result: tokens.join('') });
    const answers = first.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { event: string; delivered: number; duplicate: boolean });
    expect(answers.map((a) => [a.event, a.delivered, a.duplicate])).toEqual(
      RUN.map((name) => [name, 1, false]),
    );

    // The same run again: every event has its own id, so nothing is delivered twice.
    const again = await runToEnd('python3', [script, 'alice', 'run-py'], env);
    expect(again.code).toBe(0);
    const duplicates = again.stdout
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { duplicate: boolean }).duplicate);
    expect(duplicates).toEqual(RUN.map(() => true));
    // A marker published after the repeat arrives right after the first run: nothing in between.
    const marker = await fetch(`${server.url}/v1/users/alice/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ event: 'marker' }),
    });
    expect(marker.status).toBe(202);
    const after = await alice.waitForEvents(RUN.length + 1);
    expect(after.slice(RUN.length).map((e) => e.event)).toEqual(['marker']);
    alice.close();
  });

  it('says why and exits 1 when the gateway refuses its key', async () => {
    const server = await serve();
    const refused = await runToEnd('python3', [script, 'alice'], {
      AGENTSOCKET_URL: server.url,
      AGENTSOCKET_API_KEY: ApiKeys.generate(),
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('agentsocket refused: 401 unauthorized');
  });
});

describe('examples/node-backend', () => {
  it('embeds the gateway: a token from the app, a run from /api/ask arrives in order, SIGTERM closes with 1001', async () => {
    const app = mkdtempSync(join(tmpdir(), 'agentsocket-node-backend-'));
    dirs.push(app);
    cpSync(join(EXAMPLES, 'node-backend'), app, { recursive: true });
    // `npm install` of the example, without the network: its one dependency is this build.
    mkdirSync(join(app, 'node_modules'));
    symlinkSync(REPO_ROOT, join(app, 'node_modules', 'agentsocket'), 'dir');

    const port = await freePort();
    const child = spawn(process.execPath, ['server.mjs'], {
      cwd: app,
      env: { PATH: process.env.PATH ?? '', JWT_SECRET: SECRET, PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    await waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`the example exited: ${stderr}`);
        return stdout.includes(`listening on http://127.0.0.1:${port}`);
      },
      { timeoutMs: 15_000, what: 'the example to listen' },
    );
    const base = `http://127.0.0.1:${port}`;
    const post = (path: string, body: unknown): Promise<Response> =>
      fetch(`${base}${path}`, { method: 'POST', body: JSON.stringify(body) });

    const tokenAnswer = await post('/api/agentsocket-token', { user: 'alice' });
    expect(tokenAnswer.status).toBe(200);
    const alice = await TestClient.connect(`ws://127.0.0.1:${port}/v1/ws`, {
      token: await tokenAnswer.text(),
      autoAck: true,
    });
    const ask = await post('/api/ask', { user: 'alice', question: 'Weather in Paris?' });
    expect(ask.status).toBe(202);
    const { runId } = (await ask.json()) as { runId: string };
    const events = await alice.waitForEvents(RUN.length);
    expect(shape(events)).toEqual(RUN.map((name, i) => [name, runId, i + 1]));
    expect(events[0]?.data).toEqual({ agent: 'weather', input: 'Weather in Paris?' });
    expect(events.at(-1)?.data).toEqual({ status: 'succeeded', result: 'It is 21 °C in Paris.' });

    child.kill('SIGTERM');
    expect((await alice.waitForClose()).code).toBe(1001);
    expect(await exited).toBe(0);
    expect(stderr).toBe('');
  });
});
