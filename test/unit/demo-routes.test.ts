import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_MAX_BODY_BYTES, createDemoHandler } from '../../src/demo/demo-routes.js';
import { USER_ID_PATTERN } from '../../src/protocol/index.js';
import type { EventInput } from '../../src/protocol/index.js';
import { waitFor } from '../helpers/wait-for.js';

const webRoot = fileURLToPath(new URL('../../web/', import.meta.url));
const published: { userId: string; input: EventInput }[] = [];
let server: Server;
let base: string;
let sdkRoot: string;

/** A raw GET: `fetch` would normalize `..` away before the server saw it. */
function rawGet(path: string): Promise<{ status: number; body: string }> {
  const { port } = server.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function post(path: string, body: unknown, type = 'application/json') {
  return fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': type },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

beforeAll(async () => {
  // A stand-in for dist/: the SDK folders, and files beside them that must stay private.
  sdkRoot = mkdtempSync(join(tmpdir(), 'agentsocket-sdk-'));
  mkdirSync(join(sdkRoot, 'client'));
  mkdirSync(join(sdkRoot, 'protocol'));
  mkdirSync(join(sdkRoot, 'runs'));
  writeFileSync(join(sdkRoot, 'runs', 'run-snapshot.js'), 'export const fold = 1;\n');
  writeFileSync(join(sdkRoot, 'client', 'index.js'), 'export const client = 1;\n');
  writeFileSync(join(sdkRoot, 'protocol', 'frames.js'), 'export const frames = 1;\n');
  writeFileSync(join(sdkRoot, 'client', 'index.d.ts'), 'export {};\n');
  writeFileSync(join(sdkRoot, 'index.js'), 'export const serverSecret = 1;\n');
  const demo = createDemoHandler({
    publish: async (userId, input) => {
      published.push({ userId, input });
      return { seq: published.length };
    },
    mintToken: (userId) => `token-for-${userId}`,
    publishApiKey: 'dev-key-printed-at-start',
    webRoot,
    sdkRoot,
    tokenDelayMs: 0,
  });
  server = createServer((req, res) => {
    if (demo(req, res)) return;
    res.writeHead(404).end('not a demo route');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(sdkRoot, { recursive: true, force: true });
});

describe('demo routes: static files', () => {
  it('serves the page, its script and its styles with their content types', async () => {
    for (const [path, type, marker] of [
      ['/', 'text/html', 'data-testid="connection-status"'],
      ['/app.js', 'text/javascript', "from '/sdk/client/index.js'"],
      ['/styles.css', 'text/css', '.tool-card'],
    ] as const) {
      const res = await fetch(`${base}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain(type);
      expect(await res.text()).toContain(marker);
    }
  });

  it('serves the compiled client, protocol and run modules under /sdk/', async () => {
    const client = await fetch(`${base}/sdk/client/index.js`);
    expect(client.status).toBe(200);
    expect(client.headers.get('content-type')).toContain('text/javascript');
    expect(await client.text()).toContain('client = 1');
    const protocol = await fetch(`${base}/sdk/protocol/frames.js`);
    expect(await protocol.text()).toContain('frames = 1');
    // The SDK folds runs with src/runs: the browser loads it too.
    const runs = await fetch(`${base}/sdk/runs/run-snapshot.js`);
    expect(await runs.text()).toContain('fold = 1');
  });

  it('serves nothing else of dist/, and refuses path traversal', async () => {
    for (const path of [
      '/sdk/index.js',
      '/sdk/client/index.d.ts',
      '/sdk/client/missing.js',
      '/sdk/client/../index.js',
      '/sdk/client/%2e%2e/index.js',
      '/sdk/client/..%2Findex.js',
      '/sdk/client/..%5Cindex.js',
      '/sdk/client/%00index.js',
      '/sdk/server/index.js',
    ]) {
      const res = await rawGet(path);
      expect(res.status, path).not.toBe(200);
      expect(res.body, path).not.toContain('serverSecret');
    }
    const outside = await rawGet('/sdk/client/../../package.json');
    expect(outside.status).toBe(404);
    expect(outside.body).not.toContain('"name"');
  });

  it('leaves other paths to the caller', async () => {
    const res = await fetch(`${base}/v1/stats`);
    expect(res.status).toBe(404);
    expect(await res.text()).toBe('not a demo route');
  });
});

describe('demo routes: endpoints', () => {
  it('GET /demo/config gives the page the dev API key for its curl, and nothing else', async () => {
    const res = await fetch(`${base}/demo/config`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual({ publishApiKey: 'dev-key-printed-at-start' });
    const posted = await post('/demo/config', {});
    expect(posted.status).toBe(405);
    expect(posted.headers.get('allow')).toBe('GET, HEAD');
  });

  it('POST /demo/session mints a token for a new user, or for the given one', async () => {
    const fresh = await post('/demo/session', {});
    expect(fresh.status).toBe(200);
    const created = (await fresh.json()) as { userId: string; token: string };
    expect(created.userId).toMatch(USER_ID_PATTERN);
    expect(created.token).toBe(`token-for-${created.userId}`);
    const again = (await (await post('/demo/session', { userId: 'alice' })).json()) as {
      userId: string;
      token: string;
    };
    expect(again).toEqual({ userId: 'alice', token: 'token-for-alice' });
  });

  it('refuses a bad user id, bad JSON, a non-JSON body and a body over 16 KiB', async () => {
    const badUser = await post('/demo/session', { userId: 'not valid!' });
    expect(badUser.status).toBe(400);
    expect(await badUser.json()).toMatchObject({ error: { code: 'bad_request', field: 'userId' } });
    const badJson = await post('/demo/session', '{nope');
    expect(badJson.status).toBe(400);
    const notJson = await post(
      '/demo/session',
      'userId=alice',
      'application/x-www-form-urlencoded',
    );
    expect(notJson.status).toBe(415);
    const big = await post('/demo/run', {
      userId: 'alice',
      prompt: 'x'.repeat(DEMO_MAX_BODY_BYTES),
    });
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ error: { code: 'payload_too_large' } });
  });

  it('refuses a user id made only of dots and any query parameter, never echoing its value', async () => {
    const dots = await post('/demo/session', { userId: '..' });
    expect(dots.status).toBe(400);
    expect(await dots.json()).toMatchObject({ error: { code: 'bad_request', field: 'userId' } });
    const query = await post('/demo/session?secret=s3cr3t-value', { userId: 'alice' });
    expect(query.status).toBe(400);
    const text = await query.text();
    expect(JSON.parse(text)).toMatchObject({ error: { code: 'bad_request', field: 'secret' } });
    expect(text).not.toContain('s3cr3t-value');
  });

  it('answers 405 with Allow for a wrong method', async () => {
    const res = await fetch(`${base}/demo/run`);
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
  });

  it('POST /demo/run answers 202 with a run id, then streams that run to the user', async () => {
    const res = await post('/demo/run', { userId: 'carol', prompt: 'Tell me about acks' });
    expect(res.status).toBe(202);
    const { runId } = (await res.json()) as { runId: string };
    expect(runId).toMatch(/^run_/);
    const run = await waitFor(
      () => {
        const events = published.filter((p) => p.input.runId === runId);
        return events.at(-1)?.input.event === 'agent_completed' ? events : null;
      },
      { what: 'the run to complete' },
    );
    expect(run[0]!.input.event).toBe('agent_started');
    expect(run.every((p) => p.userId === 'carol')).toBe(true);
  });

  it('POST /demo/run refuses a missing prompt and an invalid user', async () => {
    const noPrompt = await post('/demo/run', { userId: 'carol', prompt: '   ' });
    expect(await noPrompt.json()).toMatchObject({ error: { field: 'prompt' } });
    const badUser = await post('/demo/run', { userId: '../x', prompt: 'hi' });
    expect(await badUser.json()).toMatchObject({ error: { field: 'userId' } });
  });
});

describe('demo routes: bounds', () => {
  it('refuses a chunked body once it passes 16 KiB, without a Content-Length to trust', async () => {
    const { port } = server.address() as AddressInfo;
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/demo/session',
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      const chunk = ' '.repeat(4096);
      for (let i = 0; i < 8; i++) req.write(chunk);
      req.end('{}');
    });
    expect(status).toBe(413);
  });

  it('answers 429 past maxConcurrentRuns, and the shutdown signal cancels running runs', async () => {
    const events: EventInput[] = [];
    const shutdown = new AbortController();
    const demo = createDemoHandler({
      publish: async (_userId, input) => events.push(input),
      mintToken: () => 'unused',
      webRoot,
      sdkRoot,
      tokenDelayMs: 60_000, // the first run stays in its first pause until shutdown
      maxConcurrentRuns: 1,
      signal: shutdown.signal,
    });
    const bounded = createServer((req, res) => void demo(req, res));
    await new Promise<void>((resolve) => bounded.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(bounded.address() as AddressInfo).port}/demo/run`;
    const start = (prompt: string) =>
      fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ userId: 'dave', prompt }),
      });
    try {
      expect((await start('first')).status).toBe(202);
      const second = await start('second');
      expect(second.status).toBe(429);
      expect(second.headers.get('retry-after')).toBe('1');
      shutdown.abort();
      await waitFor(() => events.at(-1)?.event === 'agent_completed', { what: 'cancellation' });
      expect(events.at(-1)!.data).toEqual({ status: 'cancelled' });
      expect((await start('after shutdown')).status).toBe(429);
    } finally {
      await new Promise<void>((resolve) => bounded.close(() => resolve()));
    }
  });
});
