/**
 * The SDK's Server-Sent Events fallback in a real browser: Debian's Chromium
 * (playwright-core) with `window.WebSocket` removed before any script of the
 * page runs, against the real `agentsocket serve --dev` as a child process,
 * reached through a TCP proxy (test/helpers/tcp-proxy.ts) that can cut every
 * connection. The page loads the browser build of the SDK from `/sdk/` (as
 * the demo page does) and falls back to `GET /v1/sse`: a published agent
 * run arrives whole, and a stream dropped by the operator
 * (`DELETE /v1/users/{id}/connections`) or by the network resumes without
 * gap or duplicate, with zero console errors.
 */
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunSnapshot } from '../../src/runs/run-types.js';
import { demoRun } from '../helpers/agent-run-events.js';
import { startCliServer, type CliServer } from '../helpers/cli-process.js';
import { launchChromium, type HeadlessChromium } from '../helpers/chromium.js';
import { freePort } from '../helpers/free-port.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { waitFor } from '../helpers/wait-for.js';

const USER_ID = `sse-browser-${process.pid}`;
const TIMEOUT_MS = 20_000;

let server: CliServer;
let proxy: TcpProxy;
let apiKey: string;
let context: BrowserContext;
let browser: HeadlessChromium | undefined;
let page: Page;
const consoleErrors: string[] = [];

beforeAll(async () => {
  server = await startCliServer(['--dev', '--heartbeat', '1s'], {}, { port: await freePort() });
  apiKey = /API key:\s+(\S+)/.exec(server.stderr())![1]!;
  proxy = await TcpProxy.start(Number(new URL(server.url).port));
  browser = await launchChromium();
  context = browser.context;
  page = await context.newPage();
  page.on('pageerror', (error) => consoleErrors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') {
      consoleErrors.push(`console: ${message.text()} (${message.location().url})`);
    }
  });
  // The test page is a JSON route: no favicon to ask for.
  await page.route('**/favicon.ico', (route) => route.fulfill({ status: 204 }));
  // No WebSocket for the page, before any of its scripts runs.
  await page.addInitScript('delete window.WebSocket;');
});

afterAll(async () => {
  await browser?.close();
  await proxy?.close();
  await server?.stop();
});

/** Publishes `events` as the run `runId` of the test user, over the HTTP API. */
async function publish(runId: string | null, items: readonly (readonly [string, unknown])[]) {
  for (const [event, data] of items) {
    const res = await fetch(`${server.url}/v1/users/${USER_ID}/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(runId === null ? { event, data } : { event, runId, data }),
    });
    expect(res.status).toBe(202);
  }
}

async function serverRun(runId: string): Promise<RunSnapshot> {
  const res = await fetch(`${server.url}/v1/users/${USER_ID}/runs/${runId}`, {
    headers: { authorization: `Bearer ${apiKey}` },
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { run: RunSnapshot }).run;
}

/** What the page's client holds (in-page code is a string: no DOM types here). */
interface PageState {
  transport: string;
  state: string;
  seqs: number[];
  welcomes: number;
  changes: string[];
  run: RunSnapshot | null;
}

function pageState(runId: string): Promise<PageState> {
  return page.evaluate(`(() => {
    const c = window.__client;
    const run = c.runs.get(${JSON.stringify(runId)});
    return {
      transport: c.transport,
      state: c.state,
      seqs: window.__seqs,
      welcomes: window.__welcomes,
      changes: window.__changes,
      run: run ? JSON.parse(JSON.stringify(run)) : null,
    };
  })()`) as Promise<PageState>;
}

async function runArrivesWhole(runId: string): Promise<PageState> {
  const items = demoRun().map((e) => [e.event, e.data] as const);
  await publish(runId, items);
  const state = await waitFor(
    async () => {
      const s = await pageState(runId);
      return s.run?.status === 'succeeded' ? s : null;
    },
    { what: `run ${runId} on the page`, timeoutMs: TIMEOUT_MS },
  );
  const server = await serverRun(runId);
  expect(state.run!.parts).toEqual(server.parts);
  expect(state.run!.completed).toEqual(server.completed);
  return state;
}

function expectGapless(seqs: number[]): void {
  expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
}

describe('the SDK in Chromium without WebSockets', () => {
  it('falls back to SSE, receives a run whole, and resumes dropped streams without gap or duplicate', async () => {
    await page.goto(`http://127.0.0.1:${proxy.port}/healthz`);
    expect(await page.evaluate('typeof window.WebSocket')).toBe('undefined');
    const transport = await page.evaluate(`(async () => {
      const { AgentSocketClient } = await import('/sdk/client/index.js');
      window.__seqs = [];
      window.__welcomes = 0;
      window.__changes = [];
      window.__errors = [];
      const token = () =>
        fetch('/demo/session', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ userId: ${JSON.stringify(USER_ID)} }),
        })
          .then((r) => r.json())
          .then((b) => b.token);
      const client = new AgentSocketClient({
        url: 'ws://' + location.host + '/v1/ws',
        token,
        backoff: () => 50,
      });
      window.__client = client;
      // A merged delta (a replay's) stands for every seq from seqFrom to seq.
      client.on('event', (e) => {
        for (let seq = e.seqFrom ?? e.seq; seq <= e.seq; seq++) window.__seqs.push(seq);
      });
      client.on('welcome', () => window.__welcomes++);
      client.on('transport', (c) => window.__changes.push(c.transport));
      client.on('error', (e) => window.__errors.push(e.message));
      await client.connect();
      return client.transport;
    })()`);
    expect(transport).toBe('sse');

    let state = await runArrivesWhole('run-browser-1');
    expect(state.changes).toEqual(['sse']);
    expectGapless(state.seqs);
    const afterFirst = state.seqs.length;

    // The operator ends the user's connections: the stream's close frame says 4401.
    const closed = await fetch(`${server.url}/v1/users/${USER_ID}/connections`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${apiKey}` },
    });
    expect(((await closed.json()) as { closed: number }).closed).toBe(1);
    await publish(null, [
      ['note', 1],
      ['note', 2],
    ]);
    state = await waitFor(
      async () => {
        const s = await pageState('run-browser-1');
        return s.welcomes === 2 && s.seqs.length === afterFirst + 2 ? s : null;
      },
      { what: 'resume after the operator disconnect', timeoutMs: TIMEOUT_MS },
    );
    expectGapless(state.seqs);

    expect(consoleErrors).toEqual([]);

    // The network drops every connection (no close frame): reconnect, resume.
    expect(proxy.cutAll()).toBeGreaterThan(0);
    state = await runArrivesWhole('run-browser-2');
    await waitFor(async () => (await pageState('run-browser-2')).welcomes === 3, {
      what: 'a third welcome',
      timeoutMs: TIMEOUT_MS,
    });
    state = await pageState('run-browser-2');
    expectGapless(state.seqs);
    expect(state.seqs.length).toBe(afterFirst * 2 + 2);
    expect(state.transport).toBe('sse');
    expect(state.state).toBe('open');
    // Chromium itself logs the stream its network cut (a response body that
    // ended mid-chunk); that one line, for that one stream, is all.
    expect(consoleErrors.length).toBeLessThanOrEqual(1);
    for (const error of consoleErrors) {
      expect(error).toMatch(
        /^console: Failed to load resource: net::ERR_INCOMPLETE_CHUNKED_ENCODING \(http:\/\/127\.0\.0\.1:\d+\/v1\/sse\?/,
      );
    }
  });
});
