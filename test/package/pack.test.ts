/**
 * The package as a newcomer meets it: `npm pack` on a clean clone (its
 * `prepack` builds), the tarball installed into a fresh app with a strict
 * tsconfig (`skipLibCheck: false`, so the published types are checked too),
 * and the README's snippets, taken verbatim from README.md, compiled and run
 * against real gateways: the five-minute path (the CLI gateway, a dev token,
 * the Node client, a curl publish) and the gateway embedded in an app's own
 * server with its HTTP API. The README therefore cannot drift from the package.
 *
 * Not run here: the ```html browser snippet (the browser tests own it), the
 * `npm install agentsocket` line (the tarball stands in for it), the
 * `npm install && npm start` / `npm test` lines (this suite is one of them;
 * `npm start` is measured in the report of issue 15), and the `serve` lines
 * of "Run it" (long-running, with `…` placeholders; test/e2e/cli.test.ts
 * covers `serve`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeys } from '../../src/auth/api-keys.js';
import { createJwtAuthenticator } from '../../src/auth/jwt-authenticator.js';
import { mintDevToken } from '../../src/auth/dev-token.js';
import { startCliServer, type CliServer } from '../helpers/cli-process.js';
import { freePort } from '../helpers/free-port.js';
import { fencedBlocks, shellCommands } from '../helpers/markdown.js';
import {
  cleanClone,
  installTarball,
  pack,
  REPO_ROOT,
  run,
  tarballFiles,
  type PackageManifest,
} from '../helpers/packed-package.js';
import { TestClient } from '../helpers/test-client.js';
import { waitFor } from '../helpers/wait-for.js';

const README = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
const TSC = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const SECRET = randomBytes(32).toString('base64url');
const API_KEY = ApiKeys.generate();

/** The strict project of a new user: what the README's snippets must compile under. */
const STRICT_TSCONFIG = {
  compilerOptions: {
    strict: true,
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    target: 'ES2022',
    skipLibCheck: false,
    outDir: 'out',
  },
  include: ['*.ts'],
};

/** Imports every public subpath but `./redis` (it needs the optional peer `ioredis`). */
const SURFACE = `import * as server from 'agentsocket';
import * as client from 'agentsocket/client';
import * as protocol from 'agentsocket/protocol';

const sizes: Record<string, number> = {
  server: Object.keys(server).length,
  client: Object.keys(client).length,
  protocol: Object.keys(protocol).length,
};
console.log(JSON.stringify(sizes));
`;

let work: string;
let app: string;
let tarball: string;
let files: string[];
let manifest: PackageManifest;
const children: ChildProcess[] = [];
const servers: CliServer[] = [];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'agentsocket-pack-'));
  const clone = join(work, 'clone');
  mkdirSync(clone);
  await cleanClone(clone);
  tarball = await pack(clone, work);
  files = await tarballFiles(tarball);

  app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({ name: 'first-hour-app', private: true, type: 'module' }),
  );
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(STRICT_TSCONFIG, null, 2));
  manifest = await installTarball(tarball, app);
  const [clientSnippet, nodeSnippet] = fencedBlocks(README, 'ts');
  // Compiled as .ts (the strict check) and run as .mjs: the README says to save
  // them as `listen.mjs` and `server.mjs`, plain JavaScript.
  for (const [name, snippet] of [
    ['readme-client', clientSnippet],
    ['readme-node', nodeSnippet],
  ] as const) {
    writeFileSync(join(app, `${name}.ts`), snippet ?? '');
    writeFileSync(join(app, `${name}.mjs`), snippet ?? '');
  }
  writeFileSync(join(app, 'surface.ts'), SURFACE);
}, 180_000); // a full build and a pack: ~20 s on an idle machine, far more under load

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  for (const server of servers) await server.stop('SIGKILL');
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('npm pack on a clean clone', () => {
  it('ships the build, the license and every target of bin and exports, and nothing of the build cache', () => {
    expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'LICENSE']));
    const targets = [
      ...Object.values(manifest.bin ?? {}),
      ...Object.values(manifest.exports ?? {}).flatMap((entry) => [entry.types, entry.default]),
    ].map((target) => target.replace(/^\.\//, ''));
    expect(targets.length).toBeGreaterThan(8);
    for (const target of targets) expect(files).toContain(target);
    expect(files.filter((file) => /tsbuildinfo|^src\/|^test\//.test(file))).toEqual([]);
    // The page `agentsocket serve --dev` serves from the package.
    expect(files).toContain('web/index.html');
    const bin = readFileSync(join(app, 'node_modules/agentsocket/dist/cli/main.js'), 'utf8');
    expect(bin.startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  it('the README has two Node snippets: the client of the five-minute path, then the embedded gateway', () => {
    const [clientSnippet, nodeSnippet, ...others] = fencedBlocks(README, 'ts');
    expect(clientSnippet).toContain('new AgentSocketClient(');
    expect(nodeSnippet).toContain('createHttpApi(gateway');
    expect(others).toEqual([]);
  });
});

describe('in a fresh strict project that installs only agentsocket', () => {
  it('the README Node snippets and every public subpath compile with skipLibCheck off', async () => {
    // tsc's diagnostics (TS7016 and the like), or nothing.
    const diagnostics = await run(process.execPath, [TSC, '-p', '.'], { cwd: app }).then(
      () => '',
      (error: Error) => error.message,
    );
    expect(diagnostics).toBe('');
    const { stdout } = await run(process.execPath, ['out/surface.js'], { cwd: app });
    const sizes = JSON.parse(stdout) as Record<string, number>;
    for (const size of Object.values(sizes)) expect(size).toBeGreaterThan(0);
  }, 120_000);

  it('the README embedding snippet runs: alice receives run-1 in order; its HTTP API and the app answer', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['readme-node.mjs'], {
      cwd: app,
      env: { PATH: process.env.PATH ?? '', JWT_SECRET: SECRET, API_KEY, PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const token = await mintDevToken({ secret: SECRET, userId: 'alice', ttlSeconds: 600 });
    // The snippet's first publish waits up to 5 s for alice's socket: connect as soon as it listens.
    const alice = await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`the snippet exited: ${stderr}`);
        return TestClient.connect(`ws://127.0.0.1:${port}/v1/ws`, { token, autoAck: true }).catch(
          () => null,
        );
      },
      { timeoutMs: 15_000, intervalMs: 20, what: "the snippet's gateway to accept alice" },
    );
    const events = await alice.waitForEvents(5, 10_000);
    expect(events.map((e) => [e.event, e.runId])).toEqual([
      ['agent_started', 'run-1'],
      ['agent_thinking', 'run-1'],
      ['tool_executing', 'run-1'],
      ['tool_completed', 'run-1'],
      ['agent_completed', 'run-1'],
    ]);
    expect(events.at(-1)?.data).toMatchObject({ status: 'succeeded', result: 'It is 21 °C.' });

    // "the `curl` above works unchanged" against the app's own server.
    const base = `http://127.0.0.1:${port}`;
    const curl = fencedBlocks(README, 'sh')
      .flatMap(shellCommands)
      .find((c) => c.command.startsWith('curl '));
    await run('sh', ['-c', (curl?.command ?? 'false').replaceAll('http://localhost:8080', base)], {
      cwd: app,
      env: { PATH: process.env.PATH ?? '', API_KEY },
    });
    const published = await alice.waitForEvents(6);
    expect(published.at(-1)).toMatchObject({ event: 'agent_started', runId: 'r1', seq: 6 });
    const refused = await fetch(`${base}/v1/users/alice/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ApiKeys.generate()}` },
      body: '{"event":"token"}',
    });
    expect(refused.status).toBe(401);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const own = await fetch(`${base}/anything/else`);
    expect([own.status, await own.text()]).toEqual([200, 'your app\n']);
    alice.close();
  }, 60_000);

  it('the five-minute path: the client snippet, as alice, prints what the README curl publishes', async () => {
    const server = await startCliServer([], {
      AGENTSOCKET_JWT_SECRET: SECRET,
      AGENTSOCKET_API_KEYS: API_KEY,
    });
    servers.push(server);
    const child = spawn(process.execPath, ['readme-client.mjs'], {
      cwd: app,
      env: { PATH: process.env.PATH ?? '', JWT_SECRET: SECRET, PORT: new URL(server.url).port },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const printed = (line: string, what: string) =>
      waitFor(
        () => {
          if (child.exitCode !== null) throw new Error(`the client exited: ${stderr}`);
          return stdout.split('\n').includes(line);
        },
        { timeoutMs: 15_000, what },
      );
    await printed('alice is connected', 'the client snippet to connect');
    const curl = fencedBlocks(README, 'sh')
      .flatMap(shellCommands)
      .find((c) => c.command.startsWith('curl '));
    const { stdout: answer } = await run(
      'sh',
      ['-c', (curl?.command ?? 'false').replaceAll('http://localhost:8080', server.url)],
      { cwd: app, env: { PATH: process.env.PATH ?? '', API_KEY } },
    );
    expect(JSON.parse(answer)).toMatchObject({ seq: 1, delivered: 1 });
    // The line the README says the second terminal prints.
    const promised = /prints `(1 agent_started r1 [^`]+)`/.exec(README)?.[1] ?? 'missing';
    await printed(promised, `the client to print ${promised}`);
  }, 60_000);
});

describe("the README's shell snippets, against a real server", () => {
  const commands = fencedBlocks(README, 'sh').flatMap(shellCommands);
  const env = (): NodeJS.ProcessEnv => ({
    PATH: `${join(app, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`,
    HOME: process.env.HOME ?? work,
    API_KEY,
    JWT_SECRET: SECRET,
  });
  /** The command with the README's `http://localhost:8080` pointed at `server`. */
  const against = (command: string, server: CliServer): string =>
    command.replaceAll('http://localhost:8080', server.url);
  const find = (pattern: RegExp): { command: string; output: string[] } => {
    const found = commands.find((c) => pattern.test(c.command));
    if (!found) throw new Error(`no README shell command matches ${pattern}`);
    return found;
  };

  it("the five-minute path's export line makes a JWT secret and an API key the gateway takes", async () => {
    const exported = find(/^export JWT_SECRET=/).command;
    const { stdout } = await run('sh', ['-c', `${exported} && echo "$JWT_SECRET" "$API_KEY"`], {
      cwd: app,
      env: { PATH: process.env.PATH ?? '' },
    });
    const [secret, key] = stdout.trim().split(' ');
    expect(() => createJwtAuthenticator({ secret: secret ?? '' })).not.toThrow();
    expect(new ApiKeys([key ?? '']).size).toBe(1);
  });

  it('curl publishes with wait: the answer has the shape the README shows, alice gets the event', async () => {
    const server = await startCliServer([], {
      AGENTSOCKET_JWT_SECRET: SECRET,
      AGENTSOCKET_API_KEYS: API_KEY,
    });
    servers.push(server);
    const curl = find(/^curl /);
    const alice = await TestClient.connect(server.wsUrl, {
      token: await mintDevToken({ secret: SECRET, userId: 'alice', ttlSeconds: 600 }),
      autoAck: true,
    });
    const { stdout } = await run('sh', ['-c', against(curl.command, server)], {
      cwd: app,
      env: env(),
    });
    // The README shows `# 202 {"seq":1,"epoch":"e_…",…}`: the body, `…` standing for any text.
    const shown = (curl.output[0] ?? '').replace(/^\d{3} /, '');
    const escaped = shown.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replaceAll('…', '[^"]*');
    expect(stdout.trim()).toMatch(new RegExp(`^${escaped}$`));
    const [event] = await alice.waitForEvents(1);
    expect(event).toMatchObject({ event: 'agent_started', runId: 'r1', seq: 1 });
    alice.close();
  }, 60_000);

  it('`npx agentsocket token` mints a token the server accepts; `npx agentsocket publish` reaches alice', async () => {
    const server = await startCliServer([], {
      AGENTSOCKET_JWT_SECRET: SECRET,
      AGENTSOCKET_API_KEYS: API_KEY,
    });
    servers.push(server);
    const token = await run('sh', ['-c', find(/^npx agentsocket token /).command], {
      cwd: app,
      env: env(),
    });
    const alice = await TestClient.connect(server.wsUrl, {
      token: token.stdout.trim(),
      autoAck: true,
    });
    expect((await alice.welcome()).type).toBe('welcome');
    const publish = find(/^npx agentsocket publish /).command;
    await run('sh', ['-c', against(publish, server)], { cwd: app, env: env() });
    const [event] = await alice.waitForEvents(1);
    expect(event).toMatchObject({ event: 'token', data: { t: 'hi' } });
    alice.close();
  }, 60_000);
});
