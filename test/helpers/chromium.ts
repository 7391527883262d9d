/**
 * Debian's Chromium for the browser tests (playwright-core): one path, one
 * set of flags, one clear message when it is missing.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const INSTALL_HINT =
  `Chromium not found at ${CHROMIUM}. The browser tests need it: ` +
  '`apt-get install chromium` on Debian (.ci/run does this), or set CHROMIUM_PATH.';
/** Nothing the tests do not ask for: no GPU, no QUIC, no background traffic. */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface HeadlessChromium {
  readonly context: BrowserContext;
  /** Closes the browser and removes its profile directory. */
  close(): Promise<void>;
}

/** A headless Chromium with a fresh profile; throws with the install hint when it is missing. */
export async function launchChromium(
  options: { viewport?: { width: number; height: number } } = {},
): Promise<HeadlessChromium> {
  if (!existsSync(CHROMIUM)) throw new Error(INSTALL_HINT);
  const userDataDir = mkdtempSync(join(tmpdir(), 'agentsocket-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    ...(options.viewport ? { viewport: options.viewport } : {}),
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
