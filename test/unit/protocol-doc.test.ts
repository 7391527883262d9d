/**
 * Keeps docs/protocol.md exact against the code: the close-code, error-code,
 * limits and route tables say what the code does, both ways (nothing missing,
 * nothing extra), and no page of README.md or docs/ links outside the
 * repository or to a page or heading that does not exist.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { UserAuthenticator } from '../../src/auth/authenticator.js';
import { TICKET_TTL_MS } from '../../src/auth/ticket-store.js';
import { RETRY_AFTER_SECONDS } from '../../src/errors.js';
import { DEFAULT_LIMITS, resolveOptions } from '../../src/gateway/options.js';
import {
  MAX_PUBLISH_WAIT_MS,
  createApiHandler,
  type ApiDependencies,
} from '../../src/http/api-routes.js';
import { Router } from '../../src/http/router.js';
import { CLOSE_CODES, ERROR_CODES, MAX_TOKEN_LENGTH } from '../../src/protocol/index.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const doc = readFileSync(join(root, 'docs/protocol.md'), 'utf8');

/** The text under a heading, up to the next heading of the same level or higher. */
function section(text: string, heading: string): string {
  const level = /^#+/.exec(heading)?.[0].length ?? 0;
  const lines = text.split('\n');
  const start = lines.indexOf(heading);
  if (start === -1) throw new Error(`no heading "${heading}" in docs/protocol.md`);
  const end = lines.findIndex((line, i) => {
    if (i <= start) return false;
    const hashes = /^(#+) /.exec(line)?.[1];
    return hashes !== undefined && hashes.length <= level;
  });
  return lines.slice(start + 1, end === -1 ? undefined : end).join('\n');
}

/** The tables of a markdown text: each a list of body rows, each a list of trimmed cells. */
function tables(text: string): string[][][] {
  const found: string[][][] = [];
  let current: string[][] | null = null;
  let header = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith('|')) {
      current = null;
      continue;
    }
    // `\|` is a pipe inside a cell, not a cell boundary.
    const cells = line
      .slice(1, line.trimEnd().endsWith('|') ? line.trimEnd().length - 1 : undefined)
      .split(/(?<!\\)\|/)
      .map((cell) => cell.trim());
    if (current === null) {
      current = [];
      found.push(current);
      header = true;
      continue;
    }
    if (header && cells.every((cell) => /^:?-+:?$/.test(cell))) {
      header = false;
      continue;
    }
    current.push(cells);
  }
  return found;
}

function unquote(cell: string): string {
  return cell.replace(/^`|`$/g, '');
}

const UNITS: Readonly<Record<string, number>> = {
  KiB: 1024,
  MiB: 1024 * 1024,
  ms: 1,
  s: 1000,
  min: 60_000,
  h: 3_600_000,
};

/** A default as the page writes it (`64 KiB`, `100 000`, `10 s`, `reject`) as the code's value. */
function parseDefault(cell: string): number | string {
  const text = unquote(cell);
  if (/^[a-z-]+$/.test(text)) return text;
  const match = /^(\d[\d ]*?)(?: (KiB|MiB|ms|s|min|h))?$/.exec(text);
  if (!match) throw new Error(`cannot read the default "${cell}"`);
  const units = match[2] === undefined ? 1 : (UNITS[match[2]] as number);
  return Number((match[1] as string).replace(/ /g, '')) * units;
}

/** Rows of every table in `text` as a map from the first cell (unquoted) to the row. */
function rowsByKey(text: string): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const table of tables(text)) {
    for (const row of table) {
      const key = unquote(row[0] ?? '');
      expect(rows.has(key), `"${key}" is listed twice`).toBe(false);
      rows.set(key, row);
    }
  }
  return rows;
}

describe('docs/protocol.md: close codes', () => {
  it('lists exactly the codes of close-codes.ts, each with its name, meaning and advice', () => {
    const documented = [...rowsByKey(section(doc, '## Close codes')).values()].map((row) => ({
      code: Number(row[0]),
      name: unquote(row[1] ?? ''),
      meaning: row[2],
      reconnect: row[3],
    }));
    const sortByCode = <T extends { code: number }>(list: readonly T[]): T[] =>
      [...list].sort((a, b) => a.code - b.code);
    expect(sortByCode(documented)).toEqual(sortByCode(CLOSE_CODES));
  });
});

describe('docs/protocol.md: error codes', () => {
  it('lists exactly the codes of error-codes.ts, each with its status and meaning', () => {
    const documented = Object.fromEntries(
      [...rowsByKey(section(doc, '## Error codes')).entries()].map(([code, row]) => [
        code,
        { status: Number(row[1]), meaning: row[2] },
      ]),
    );
    expect(documented).toEqual(ERROR_CODES);
  });
});

describe('docs/protocol.md: limits', () => {
  const rows = rowsByKey(section(doc, '## Limits'));
  const authenticator: UserAuthenticator = {
    verify: () => Promise.reject(new Error('no token is verified in this test')),
  };

  it('lists every limit of DEFAULT_LIMITS with its default, and no other limits.* option', () => {
    const documented = Object.fromEntries(
      [...rows.entries()]
        .filter(([key]) => key.startsWith('limits.'))
        .map(([key, row]) => [key.slice('limits.'.length), parseDefault(row[1] ?? '')]),
    );
    expect(documented).toEqual(DEFAULT_LIMITS);
  });

  it('lists every other numeric default of the gateway options with its value', () => {
    const resolved = resolveOptions({ authenticator });
    const numeric = Object.entries(resolved).filter(([, value]) => typeof value === 'number');
    expect(numeric.length).toBeGreaterThanOrEqual(6);
    for (const [name, value] of numeric) {
      const row = rows.get(name);
      expect(row, `${name} is missing from the limits table`).toBeDefined();
      expect(parseDefault(row?.[1] ?? ''), name).toBe(value);
    }
  });

  it('gives the fixed bounds their values in the code', () => {
    const constants: Record<string, number> = {
      TICKET_TTL_MS,
      MAX_PUBLISH_WAIT_MS,
      MAX_TOKEN_LENGTH,
      RETRY_AFTER_SECONDS,
    };
    for (const [name, value] of Object.entries(constants)) {
      expect(parseDefault(rows.get(name)?.[1] ?? '(missing)'), name).toBe(value);
    }
  });

  it('reads the units the page writes, so a wrong value cannot pass as a format', () => {
    expect(parseDefault('64 KiB')).toBe(65_536);
    expect(parseDefault('100 000')).toBe(100_000);
    expect(parseDefault('1 h')).toBe(3_600_000);
    expect(parseDefault('`reject`')).toBe('reject');
    expect(() => parseDefault('50 (burst 50)')).toThrow(/cannot read/);
  });
});

describe('docs/protocol.md: HTTP routes', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('lists exactly the routes the HTTP API registers', () => {
    const on = vi.spyOn(Router.prototype, 'on');
    // Routes are registered when the handler is built; no handler runs here,
    // so none of the dependencies is ever called.
    createApiHandler({} as unknown as ApiDependencies);
    const registered = on.mock.calls.map(([method, template]) => `${method} ${template}`);
    expect(registered.length).toBeGreaterThanOrEqual(10);

    const routeTable = tables(section(doc, '### Routes'))[0] ?? [];
    const documented = routeTable.map((row) => unquote(row[0] ?? ''));
    expect([...documented].sort()).toEqual([...registered].sort());
  });
});

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6} (.+)$/.exec(line);
    if (!heading) continue;
    const base = slug(heading[1] as string);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

const pages = [
  join(root, 'README.md'),
  ...readdirSync(join(root, 'docs'), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.md'))
    .map((name) => join(root, 'docs', name)),
];

describe('links of README.md and docs/', () => {
  it.each(pages.map((page) => [relative(root, page), page]))(
    '%s never links outside the repository to the protocol brief',
    (_name, page) => {
      const text = readFileSync(page, 'utf8');
      expect(text).not.toMatch(/\]\([^)]*\.\.\/shared\//);
      expect(text).not.toContain('shared/spec/PROTOCOL.md');
    },
  );

  it.each(pages.map((page) => [relative(root, page), page]))(
    '%s links only to pages and headings that exist',
    (_name, page) => {
      const text = readFileSync(page, 'utf8');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target as string)) continue;
        const [path = '', anchor] = (target as string).split('#');
        const file = path === '' ? page : join(dirname(page), path);
        expect(existsSync(file), `${target} from ${relative(root, page)}`).toBe(true);
        if (anchor !== undefined && file.endsWith('.md')) {
          expect(anchorsOf(readFileSync(file, 'utf8')), `${target}`).toContain(anchor);
        }
      }
    },
  );

  it('finds the headings a link names, and refuses one that is not there', () => {
    const anchors = anchorsOf(doc);
    expect(anchors).toContain('get--delete-v1usersuseridconnections');
    expect(anchors).toContain('protocol-11-agent-runs');
    expect(anchors).not.toContain('protocol-notes');
  });
});
