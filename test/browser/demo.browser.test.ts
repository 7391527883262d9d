/**
 * The demo page in a real browser: Debian's Chromium, driven by
 * `playwright-core`, against the gateway and the demo routes on one HTTP
 * server on 127.0.0.1. The page loads the SDK from `dist/` (built by the
 * vitest global setup), takes a token from `POST /demo/session`, and renders
 * every event with its `data-seq` (docs/client.md, "The demo page").
 *
 * One browser per file; each test uses its own user, so its seqs start at 1.
 * Screenshots go to `test-results/`: `demo-chat-running.png` (reasoning
 * streaming), `demo-chat.png`, `demo-chat-dark.png` and
 * `demo-chat-narrow.png` (the finished run).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDemoHandler } from '../../src/demo/demo-routes.js';
import { SIMULATED_TOOL_NAME } from '../../src/demo/simulated-agent.js';
import type { EventInput } from '../../src/protocol/index.js';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';
import { waitFor } from '../helpers/wait-for.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const INSTALL_HINT =
  `Chromium not found at ${CHROMIUM}. The browser tests need it: ` +
  '`apt-get install chromium` on Debian (.ci/run does this), or set CHROMIUM_PATH.';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const resultsDir = join(repoRoot, 'test-results');
/** Pause between streamed tokens: a run takes about a second, long enough to drop mid-run. */
const TOKEN_DELAY_MS = 25;
const UI_TIMEOUT_MS = 15_000;

let h: Harness;
let context: BrowserContext;
let userDataDir: string;
/** Every seq published, per user and run: what the page must show. */
const published = new Map<string, number[]>();
/** Runs whose last publish has resolved (the page may render it a moment before). */
const finished = new Set<string>();
const pageErrors: string[] = [];
const pages: Page[] = [];
let users = 0;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(INSTALL_HINT);
  // The demo routes publish through the gateway started just below (read when a run starts).
  const demo = createDemoHandler({
    publish: async (userId: string, input: EventInput) => {
      const result = await h.gateway.publish(userId, input);
      const key = `${userId}/${input.runId ?? ''}`;
      published.set(key, [...(published.get(key) ?? []), result.seq]);
      if (input.event === 'agent_completed') finished.add(key);
      return result;
    },
    mintToken: (userId) => h.token(userId),
    webRoot: join(repoRoot, 'web'),
    sdkRoot: join(repoRoot, 'dist'),
    tokenDelayMs: TOKEN_DELAY_MS,
  });
  h = await startGateway({ heartbeatMs: 1000 }, { onRequest: demo });
  userDataDir = mkdtempSync(join(tmpdir(), 'agentsocket-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 860 },
  });
});

afterEach(async () => {
  for (const page of pages.splice(0)) await page.close();
  expect(pageErrors.splice(0)).toEqual([]);
});

afterAll(async () => {
  await context?.close();
  await h?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

/** Opens the demo as `userId` and waits for its connection to be open. */
async function openDemo(userId: string): Promise<Page> {
  const page = await context.newPage();
  pages.push(page);
  page.on('pageerror', (error) => pageErrors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(`console: ${message.text()}`);
  });
  await page.goto(`${h.httpUrl}/#user=${encodeURIComponent(userId)}`);
  await page
    .locator('[data-testid=connection-status][data-state=open]')
    .waitFor({ timeout: UI_TIMEOUT_MS });
  expect(await page.getByTestId('user-id').textContent()).toBe(userId);
  return page;
}

/** The seqs published for a run, once its last publish has resolved. */
async function publishedRun(userId: string, runId: string): Promise<number[]> {
  const key = `${userId}/${runId}`;
  await waitFor(() => finished.has(key), { what: `the publishes of ${runId}` });
  return published.get(key)!;
}

function newUser(): string {
  return `browser-user-${++users}-${process.pid}`;
}

/** Types a prompt, sends it, and returns the run id the page shows. */
async function sendPrompt(page: Page, prompt: string): Promise<string> {
  await page.getByTestId('prompt').fill(prompt);
  await page.getByTestId('send').click();
  const run = page.locator('[data-testid=run]').last();
  await run.waitFor({ timeout: UI_TIMEOUT_MS });
  const runId = await run.getAttribute('data-run-id');
  expect(runId).toMatch(/^run_/);
  return runId!;
}

async function waitForCompletion(page: Page, runId: string): Promise<void> {
  await page
    .locator(`[data-run-id="${runId}"] [data-testid=step-agent_completed]`)
    .waitFor({ timeout: UI_TIMEOUT_MS });
}

/** The rendered steps of a run, in document order. */
function renderedSteps(page: Page, runId: string): Promise<{ seq: number; step: string }[]> {
  return page.locator(`[data-run-id="${runId}"] [data-seq]`).evaluateAll((nodes) =>
    nodes.map((node) => ({
      seq: Number(node.getAttribute('data-seq')),
      step: (node.getAttribute('data-testid') ?? '').replace(/^step-/, ''),
    })),
  );
}

/**
 * Records every value the status pill's `data-state` takes from now on. The
 * in-page code is a string: this project type-checks without the DOM library.
 */
async function recordStates(page: Page): Promise<() => Promise<string[]>> {
  await page.evaluate(`(() => {
    const pill = document.querySelector('[data-testid=connection-status]');
    const seen = (window.seenStates = []);
    new MutationObserver((records) => {
      for (const record of records) seen.push(record.target.dataset.state);
    }).observe(pill, { attributes: true, attributeFilter: ['data-state'] });
  })()`);
  return () => page.evaluate('window.seenStates') as Promise<string[]>;
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

function expectWholeRun(steps: { seq: number; step: string }[], expected: number[]): void {
  const seqs = steps.map((s) => s.seq);
  // Document order is seq order, and nothing is missing or shown twice.
  expect(seqs).toEqual(expected);
  const names = steps.map((s) => s.step);
  expect(names[0]).toBe('agent_started');
  expect(names.filter((n) => n === 'agent_thinking').length).toBeGreaterThan(5);
  expect(names.slice(-3)).toEqual(['tool_executing', 'tool_completed', 'agent_completed']);
}

describe('the demo page in Chromium', () => {
  it('runs an agent: the five kinds of step render once each, in seq order', async () => {
    const user = newUser();
    const page = await openDemo(user);
    await expect(page.getByTestId('empty-state').isVisible()).resolves.toBe(true);
    const prompt = 'How does resume after a reconnect work?';
    const runId = await sendPrompt(page, prompt);
    const thinkingSteps = page.locator(
      `[data-run-id="${runId}"] [data-testid=step-agent_thinking]`,
    );
    await waitFor(async () => (await thinkingSteps.count()) >= 5, { what: 'reasoning streaming' });
    mkdirSync(resultsDir, { recursive: true });
    await page.screenshot({ path: join(resultsDir, 'demo-chat-running.png') });
    await waitForCompletion(page, runId);

    const steps = await renderedSteps(page, runId);
    expectWholeRun(steps, await publishedRun(user, runId));
    expect(steps.map((s) => s.seq)).toEqual(range(1, steps.length));
    const run = page.locator(`[data-run-id="${runId}"]`);
    await expect(run.getByTestId('step-agent_started').textContent()).resolves.toBe(prompt);
    const thinking = await run.locator('.thinking-text').textContent();
    expect(thinking).toContain(`The user asks: "${prompt}"`);
    const tool = run.getByTestId('step-tool_executing');
    await expect(tool.locator('.tool-name').textContent()).resolves.toBe(SIMULATED_TOOL_NAME);
    await expect(tool.locator('.tool-badge').textContent()).resolves.toMatch(/^done · \d+ ms$/);
    await expect(run.getByTestId('step-tool_completed').textContent()).resolves.toContain(
      'Streaming agent events',
    );
    await expect(run.getByTestId('step-agent_completed').textContent()).resolves.toContain(
      'Here is what I found',
    );
    await expect(page.getByTestId('empty-state').isVisible()).resolves.toBe(false);
    // The cursor line follows the last event.
    await expect(page.getByTestId('cursor').textContent()).resolves.toContain(
      `seq ${steps.length} ·`,
    );

    await page.screenshot({ path: join(resultsDir, 'demo-chat.png') });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: join(resultsDir, 'demo-chat-dark.png') });
    await page.setViewportSize({ width: 390, height: 760 });
    await page.screenshot({ path: join(resultsDir, 'demo-chat-narrow.png') });
  });

  it('shows the same run in a second tab of the same user', async () => {
    const user = newUser();
    const first = await openDemo(user);
    const second = await openDemo(user);
    expect(h.gateway.connections(user)).toHaveLength(2);
    const runId = await sendPrompt(first, 'Two tabs, one stream');
    await Promise.all([waitForCompletion(first, runId), waitForCompletion(second, runId)]);
    const expected = await publishedRun(user, runId);
    expectWholeRun(await renderedSteps(first, runId), expected);
    expectWholeRun(await renderedSteps(second, runId), expected);
  });

  it('survives a server-side drop mid-run: no missing or repeated step, status back to open', async () => {
    const user = newUser();
    const page = await openDemo(user);
    const [before] = h.gateway.connections(user);
    const states = await recordStates(page);
    const runId = await sendPrompt(page, 'Drop me halfway');
    const rendered = page.locator(`[data-run-id="${runId}"] [data-testid=step-agent_thinking]`);
    await waitFor(async () => (await rendered.count()) >= 3, { what: 'the run under way' });
    expect(h.gateway.disconnectUser(user, 1001)).toBe(1);
    await waitForCompletion(page, runId);

    const steps = await renderedSteps(page, runId);
    const expected = await publishedRun(user, runId);
    expect(expected).toEqual(range(1, expected.length));
    expectWholeRun(steps, expected);
    // The pill went through reconnecting and came back to open, on a new connection.
    const seen = await states();
    expect(seen.indexOf('reconnecting')).toBeGreaterThanOrEqual(0);
    expect(seen.at(-1)).toBe('open');
    expect(seen.lastIndexOf('open')).toBeGreaterThan(seen.indexOf('reconnecting'));
    await expect(page.getByTestId('connection-status').textContent()).resolves.toBe('open');
    const after = h.gateway.connections(user);
    expect(after).toHaveLength(1);
    expect(after[0]!.connectionId).not.toBe(before!.connectionId);
  });

  it('renders an event named like an Object.prototype member (constructor) as a plain note', async () => {
    const user = newUser();
    const page = await openDemo(user);
    await h.gateway.publish(user, { event: 'constructor', data: { n: 1 } });
    const note = page.locator('[data-testid=step-constructor]');
    await note.waitFor({ timeout: UI_TIMEOUT_MS });
    expect(await note.getAttribute('data-seq')).toBe('1');
  });

  it('survives the page dropping its own socket (the "Drop connection" button) mid-run', async () => {
    const user = newUser();
    const page = await openDemo(user);
    const states = await recordStates(page);
    const runId = await sendPrompt(page, 'Drop from the client side');
    const rendered = page.locator(`[data-run-id="${runId}"] [data-testid=step-agent_thinking]`);
    await waitFor(async () => (await rendered.count()) >= 3, { what: 'the run under way' });
    await page.getByTestId('drop-connection').click();
    await waitForCompletion(page, runId);
    expectWholeRun(await renderedSteps(page, runId), await publishedRun(user, runId));
    const seen = await states();
    expect(seen).toContain('reconnecting');
    expect(seen.at(-1)).toBe('open');
  });
});
