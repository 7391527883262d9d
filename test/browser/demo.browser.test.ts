/**
 * The demo page in a real browser: Debian's Chromium, driven by
 * `playwright-core`, against the real `agentsocket serve --dev` as a child
 * process (so a test can SIGKILL it mid-run and start it again on the same
 * port). The page loads the SDK from `dist/` (built by the vitest global
 * setup), takes a token from `POST /demo/session`, draws the user's recent
 * runs (`fetchRuns`) and then follows live (docs/client.md, "The demo page").
 *
 * What "the same conversation" means here: for each run on the page, its
 * prompt and the text of each of its parts (reasoning, tool cards, answer)
 * in order, read from the DOM. Every check of a finished run also compares
 * the page with the gateway's own snapshot of the run
 * (`GET /v1/users/{userId}/runs/{runId}`). "Nothing spins": no CSS animation
 * runs anywhere in a run that is not going on (`getAnimations`).
 *
 * One browser per file; each test uses its own user. Screenshots go to
 * `test-results/`: `demo-chat-running.png`, `demo-chat.png`,
 * `demo-chat-dark.png`, `demo-chat-narrow.png`, `demo-interrupted.png`.
 */
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SIMULATED_TOOL_NAME } from '../../src/demo/simulated-agent.js';
import type { RunSnapshot } from '../../src/runs/run-types.js';
import { startCliServer, type CliServer } from '../helpers/cli-process.js';
import { launchChromium, type HeadlessChromium } from '../helpers/chromium.js';
import { freePort } from '../helpers/free-port.js';
import { waitFor } from '../helpers/wait-for.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const resultsDir = join(repoRoot, 'test-results');
const UI_TIMEOUT_MS = 20_000;

let server: CliServer;
let port: number;
let apiKey: string;
let context: BrowserContext;
let browser: HeadlessChromium | undefined;
const pageErrors: string[] = [];
const pages: Page[] = [];
let users = 0;

/** `serve --dev` on `port`; the API key it generated, read from what it printed. */
async function startDevServer(): Promise<void> {
  server = await startCliServer(['--dev', '--heartbeat', '1s'], {}, { port });
  const printed = /API key:\s+(\S+)/.exec(server.stderr());
  if (!printed) throw new Error(`serve --dev printed no API key: ${server.stderr()}`);
  apiKey = printed[1]!;
}

beforeAll(async () => {
  port = await freePort();
  await startDevServer();
  browser = await launchChromium({ viewport: { width: 1280, height: 860 } });
  context = browser.context;
  mkdirSync(resultsDir, { recursive: true });
});

afterEach(async () => {
  for (const page of pages.splice(0)) await page.close();
  expect(pageErrors.splice(0)).toEqual([]);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

function newUser(): string {
  return `browser-user-${++users}-${process.pid}`;
}

function watch(page: Page): Page {
  pages.push(page);
  page.on('pageerror', (error) => pageErrors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(`console: ${message.text()}`);
  });
  return page;
}

/** Waits until the page drew its recent runs and its connection is open. */
async function ready(page: Page): Promise<void> {
  await page.locator('body[data-loaded=true]').waitFor({ timeout: UI_TIMEOUT_MS });
  await page
    .locator('[data-testid=connection-status][data-state=open]')
    .waitFor({ timeout: UI_TIMEOUT_MS });
}

async function openDemo(userId: string): Promise<Page> {
  const page = watch(await context.newPage());
  await page.goto(`${server.url}/#user=${encodeURIComponent(userId)}`);
  await ready(page);
  expect(await page.getByTestId('user-id').textContent()).toBe(userId);
  return page;
}

async function reload(page: Page): Promise<void> {
  await page.reload();
  await ready(page);
}

/** Types a prompt, sends it, and returns the run id the page shows. */
async function sendPrompt(page: Page, prompt: string): Promise<string> {
  const before = await page.locator('[data-testid=run]').count();
  await page.getByTestId('prompt').fill(prompt);
  await page.getByTestId('send').click();
  const run = page.locator('[data-testid=run]').nth(before);
  await run.waitFor({ timeout: UI_TIMEOUT_MS });
  const runId = await run.getAttribute('data-run-id');
  expect(runId).toMatch(/^run_/);
  return runId!;
}

function runLocator(page: Page, runId: string) {
  return page.locator(`[data-testid=run][data-run-id="${runId}"]`);
}

async function waitForStatus(page: Page, runId: string, status: string): Promise<void> {
  await page
    .locator(`[data-testid=run][data-run-id="${runId}"][data-status=${status}]`)
    .waitFor({ timeout: UI_TIMEOUT_MS });
}

interface RunOnPage {
  runId: string;
  prompt: string;
  parts: { key: string; text: string }[];
}

/**
 * The visible conversation, run by run. The in-page code is a string: this
 * project type-checks without the DOM library.
 */
function conversation(page: Page): Promise<RunOnPage[]> {
  return page.evaluate(`[...document.querySelectorAll('[data-testid=run]')].map((run) => ({
    runId: run.dataset.runId,
    prompt: run.querySelector('[data-testid=prompt-bubble]').textContent,
    parts: [...run.querySelectorAll('[data-part-key]')].map((part) => {
      // The words of the part, not a reasoning span's status label: its summary
      // reads "Thinking…" while live and "Thought" once the run ended or broke.
      const words = part.cloneNode(true);
      if (part.dataset.partKey.startsWith('reasoning:')) {
        for (const label of words.querySelectorAll('summary')) label.remove();
      }
      return { key: part.dataset.partKey, text: words.textContent };
    }),
  }))`) as Promise<RunOnPage[]>;
}

/** CSS animations running inside the run (spinners, pulses, a streaming caret). */
function animationsIn(page: Page, runId: string): Promise<number> {
  return page.evaluate(
    `document.querySelector('[data-run-id="${runId}"]').getAnimations({ subtree: true }).length`,
  ) as Promise<number>;
}

/** The gateway's snapshot of a run, over the operator route (API key). */
async function serverRun(userId: string, runId: string): Promise<RunSnapshot> {
  const res = await fetch(`${server.url}/v1/users/${userId}/runs/${runId}`, {
    headers: { Authorization: `Bearer ${apiKey}` },
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { run: RunSnapshot }).run;
}

/** The page's run against the gateway's snapshot: prompt, reasoning and answer text. */
async function expectMatchesServer(page: Page, userId: string, runId: string): Promise<void> {
  const run = await serverRun(userId, runId);
  const shown = (await conversation(page)).find((r) => r.runId === runId)!;
  expect(shown.prompt).toBe(run.input);
  const text = (kind: string) =>
    run.parts.flatMap((p) => (p.kind === kind && 'text' in p ? [p.text] : []));
  const part = (prefix: string) =>
    shown.parts.filter((p) => p.key.startsWith(prefix)).map((p) => p.text);
  // A reasoning block's text (its summary label is left out by `conversation`).
  expect(part('reasoning:')).toEqual(text('reasoning'));
  expect(part('text:')).toEqual(text('text'));
  expect(part('tool:')).toHaveLength(1);
  expect(part('tool:')[0]).toContain(SIMULATED_TOOL_NAME);
}

describe('the demo page in Chromium', () => {
  it('runs an agent: prompt, reasoning, a tool call and the streamed answer, as the gateway folded them', async () => {
    const user = newUser();
    const page = await openDemo(user);
    await expect(page.getByTestId('empty-state').isVisible()).resolves.toBe(true);
    const prompt = 'How does resume after a reconnect work?';
    const runId = await sendPrompt(page, prompt);
    const run = runLocator(page, runId);
    await run.locator('[data-testid=part-text]').waitFor({ timeout: UI_TIMEOUT_MS });
    await page.screenshot({ path: join(resultsDir, 'demo-chat-running.png') });
    await waitForStatus(page, runId, 'succeeded');

    await expect(run.getByTestId('prompt-bubble').textContent()).resolves.toBe(prompt);
    await expect(run.locator('.thinking-text').textContent()).resolves.toContain(
      `The user asks: "${prompt}"`,
    );
    const tool = run.getByTestId('part-tool');
    await expect(tool.locator('.tool-badge').textContent()).resolves.toMatch(/^done · \d+ ms$/);
    await expect(tool.textContent()).resolves.toContain('Streaming agent events');
    await expect(run.getByTestId('part-text').textContent()).resolves.toMatch(
      /^Here is what I found about "How does resume after a reconnect work\?"/,
    );
    await expectMatchesServer(page, user, runId);
    expect(await animationsIn(page, runId)).toBe(0);
    await expect(page.getByTestId('cursor').textContent()).resolves.toMatch(/seq \d+ ·/);

    await page.screenshot({ path: join(resultsDir, 'demo-chat.png') });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: join(resultsDir, 'demo-chat-dark.png') });
    await page.setViewportSize({ width: 390, height: 760 });
    await page.screenshot({ path: join(resultsDir, 'demo-chat-narrow.png') });
  });

  it('shows the same conversation after a reload mid-run, and after a reload once it is done', async () => {
    const user = newUser();
    const page = await openDemo(user);
    const first = await sendPrompt(page, 'A first question');
    await waitForStatus(page, first, 'succeeded');
    const runId = await sendPrompt(page, 'Reload me halfway');
    const thinking = runLocator(page, runId).locator('.thinking-text');
    await waitFor(async () => ((await thinking.textContent()) ?? '').length > 40, {
      what: 'the reasoning under way',
    });
    const before = await conversation(page);
    await reload(page);
    // Right after the reload: the same runs, each part at least as far as before.
    const after = await conversation(page);
    expect(after.map((r) => [r.runId, r.prompt])).toEqual(before.map((r) => [r.runId, r.prompt]));
    expect(after[0]).toEqual(before[0]);
    expect(before[1]!.parts.length).toBeGreaterThan(0);
    for (const [i, part] of before[1]!.parts.entries()) {
      expect(after[1]!.parts[i]!.key).toBe(part.key);
      expect(after[1]!.parts[i]!.text.startsWith(part.text)).toBe(true);
    }
    await expect(page.locator('.bubble.user.missing').count()).resolves.toBe(0);
    await waitForStatus(page, runId, 'succeeded');
    await expectMatchesServer(page, user, runId);

    const done = await conversation(page);
    await reload(page);
    expect(await conversation(page)).toEqual(done);
    await expect(page.getByTestId('gap').count()).resolves.toBe(0);
    expect(await animationsIn(page, runId)).toBe(0);
  });

  it('keeps a second tab in step', async () => {
    const user = newUser();
    const first = await openDemo(user);
    const opened = context.waitForEvent('page');
    await first.getByTestId('other-tab').click();
    const second = watch(await opened);
    await ready(second);
    expect(await second.getByTestId('user-id').textContent()).toBe(user);
    const runId = await sendPrompt(first, 'Two tabs, one stream');
    await waitForStatus(first, runId, 'succeeded');
    await waitForStatus(second, runId, 'succeeded');
    expect(await conversation(second)).toEqual(await conversation(first));
    await expectMatchesServer(second, user, runId);
  });

  it('says a run was interrupted when the server is killed and restarted mid-run, and nothing spins', async () => {
    const user = newUser();
    const page = await openDemo(user);
    const runId = await sendPrompt(page, 'Kill the server under me');
    const thinking = runLocator(page, runId).locator('.thinking-text');
    await waitFor(async () => ((await thinking.textContent()) ?? '').length > 40, {
      what: 'the reasoning under way',
    });
    await server.stop('SIGKILL');
    await page
      .locator('[data-testid=connection-status][data-state=reconnecting]')
      .waitFor({ timeout: UI_TIMEOUT_MS });
    // Nothing can arrive now: this is the conversation the page must keep.
    const before = await conversation(page);
    await startDevServer();
    await page
      .locator('[data-testid=connection-status][data-state=open]')
      .waitFor({ timeout: UI_TIMEOUT_MS });
    await waitForStatus(page, runId, 'interrupted');
    expect(await conversation(page)).toEqual(before);
    await expect(runLocator(page, runId).getByTestId('run-status').textContent()).resolves.toMatch(
      /^Interrupted/,
    );
    expect(await animationsIn(page, runId)).toBe(0);
    await page.screenshot({ path: join(resultsDir, 'demo-interrupted.png') });
    // While the server was down, Chromium logged the connections it could not make (refused
    // while nothing listened; reset when the kill cut a request in flight); nothing else.
    const outage = pageErrors.splice(0);
    expect(
      outage.filter(
        (e) =>
          !/ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE|WebSocket connection to .* failed/.test(
            e,
          ),
      ),
    ).toEqual([]);

    // The restarted server works: a new run goes through on the same page.
    const next = await sendPrompt(page, 'And now?');
    await waitForStatus(page, next, 'succeeded');
    expect((await conversation(page)).find((r) => r.runId === runId)).toEqual(before[0]);
  });

  it('shows the exact curl with the printed API key; what it publishes appears, and stays after a reload', async () => {
    const user = newUser();
    const page = await openDemo(user);
    const curl = page.getByTestId('curl-token');
    await waitFor(async () => ((await curl.textContent()) ?? '').includes(apiKey), {
      what: 'the curl with the API key',
    });
    const command = (await curl.textContent())!;
    expect(command).toContain(`${server.url}/v1/users/${user}/events`);
    // Run it as a user would paste it.
    await promisify(execFile)('sh', ['-c', `${command} --fail --silent`]);
    await promisify(execFile)('sh', ['-c', `${command} --fail --silent`]);
    const custom = (await page.getByTestId('curl-custom').textContent())!;
    await promisify(execFile)('sh', ['-c', `${custom} --fail --silent`]);
    const tokens = page.getByTestId('feed-tokens');
    await waitFor(
      async () =>
        (await tokens.locator('.feed-text').textContent()) === 'Hello from curl Hello from curl ',
      { what: 'two tokens joined in one line' },
    );
    const shipped = page.locator('[data-testid=feed-event][data-event="order.shipped"]');
    await shipped.waitFor({ timeout: UI_TIMEOUT_MS });
    await expect(shipped.textContent()).resolves.toContain('A-1001');
    const feed = await page.getByTestId('feed').textContent();
    await reload(page);
    expect(await page.getByTestId('feed').textContent()).toBe(feed);
  });

  it('renders an event named like an Object.prototype member (constructor) as a plain feed item', async () => {
    const user = newUser();
    const page = await openDemo(user);
    const res = await fetch(`${server.url}/v1/users/${user}/events`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ event: 'constructor', data: { n: 1 } }),
    });
    expect(res.status).toBe(202);
    const item = page.locator('[data-testid=feed-event][data-event=constructor]');
    await item.waitFor({ timeout: UI_TIMEOUT_MS });
    expect(await item.getAttribute('data-seq')).toBe('1');
  });

  it('survives the page dropping its own socket mid-run (the "Drop connection" button)', async () => {
    const user = newUser();
    const page = await openDemo(user);
    const runId = await sendPrompt(page, 'Drop from the client side');
    const thinking = runLocator(page, runId).locator('.thinking-text');
    await waitFor(async () => ((await thinking.textContent()) ?? '').length > 20, {
      what: 'the run under way',
    });
    await page.getByTestId('drop-connection').click();
    await waitForStatus(page, runId, 'succeeded');
    await expectMatchesServer(page, user, runId);
  });
});
