/**
 * The client SDK builds for browsers with no Node types, so src/client/ may
 * import only from itself, src/protocol/ and the pure run modules in
 * src/runs/ (which in turn import only themselves and src/protocol/):
 * eslint.config.js enforces it, and this runs ESLint's own API on snippets to
 * prove the rules fire.
 */
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const eslint = new ESLint({ cwd: root });

/** The messages of `no-restricted-imports` for `code` linted as if it lived at `filePath`. */
async function restrictedImports(code: string, filePath: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${root}/${filePath}` });
  return (result?.messages ?? [])
    .filter((message) => message.ruleId === 'no-restricted-imports')
    .map((message) => message.message);
}

describe('the client import boundary (eslint.config.js)', () => {
  it.each([
    "import { parseServeConfig } from '../server/config.js';",
    "import type { Logger } from 'pino';",
    "import { readFileSync } from 'node:fs';",
    "import { WebSocket } from 'ws';",
    "export { resolveOptions } from '../gateway/options.js';",
    "import { GatewayError } from '../errors.js';",
    "import { ConfigError } from '../protocol/../server/config.js';",
    "import { GatewayError } from './../errors.js';",
    "import { MemoryBroker } from '../runs/../broker/memory-broker.js';",
    "import type { RunStore } from '../broker/run-store.js';",
  ])('refuses %s in src/client/', async (code) => {
    const messages = await restrictedImports(
      `${code}\nexport const probe = 1;\n`,
      'src/client/probe.ts',
    );
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain(
      'src/client/ may import only from src/client/, src/protocol/ and src/runs/',
    );
  });

  it.each([
    "import { readFileSync } from 'node:fs';",
    "import { GatewayError } from '../errors.js';",
    "import { AgentSocketClient } from '../client/agent-socket-client.js';",
    "import type { Broker } from '../broker/broker.js';",
  ])('refuses %s in src/runs/', async (code) => {
    const messages = await restrictedImports(
      `${code}\nexport const probe = 1;\n`,
      'src/runs/probe.ts',
    );
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain('src/runs/ may import only from src/runs/ and src/protocol/');
  });

  it.each([
    "import { exponentialBackoff } from './backoff.js';",
    "import type { WelcomeFrame } from '../protocol/frames.js';",
    "export { CloseCode } from '../protocol/close-codes.js';",
    "import { foldRunFrame } from '../runs/run-snapshot.js';",
    "import type { RunSnapshot } from '../runs/run-types.js';",
  ])('accepts %s in src/client/', async (code) => {
    expect(
      await restrictedImports(`${code}\nexport const probe = 1;\n`, 'src/client/probe.ts'),
    ).toEqual([]);
  });

  it('leaves the server side free to import what it needs', async () => {
    const code = "import { readFileSync } from 'node:fs';\nexport const probe = readFileSync;\n";
    expect(await restrictedImports(code, 'src/server/probe.ts')).toEqual([]);
  });
});
