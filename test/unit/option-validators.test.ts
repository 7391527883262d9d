/**
 * One validator per kind of option value, one error type (`OptionError`, a
 * `TypeError`): the library's number options and the CLI's text options.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HISTORY_DEFAULTS } from '../../src/broker/stream-defaults.js';
import { resolveOptions } from '../../src/gateway/options.js';
import { formatKind, readKind } from '../../src/options/option-kinds.js';
import { defaultText, readOptions, type OptionSpec } from '../../src/options/option-spec.js';
import {
  formatDuration,
  formatSize,
  nonNegativeInteger,
  OptionError,
  parseDuration,
  parseSize,
  positiveInteger,
} from '../../src/options/validators.js';
import { SERVE_OPTIONS } from '../../src/server/serve-options.js';

const authenticator = { verify: () => Promise.resolve({ userId: 'u', expiresAt: null }) };

function thrown(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a throw');
}

describe('number validators', () => {
  it.each([0, -1, 1.5, Number.NaN, Infinity, 2 ** 53])('positiveInteger refuses %s', (value) => {
    const error = thrown(() => positiveInteger('option historySize', value));
    expect(error).toBeInstanceOf(OptionError);
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe(`option historySize must be a positive integer, got ${value}`);
  });

  it('nonNegativeInteger takes 0 and refuses -1', () => {
    expect(nonNegativeInteger('n', 0)).toBe(0);
    expect(positiveInteger('n', 1)).toBe(1);
    expect(thrown(() => nonNegativeInteger('n', -1)).message).toBe(
      'n must be a non-negative integer, got -1',
    );
  });

  it('the gateway options refuse with the same error type and name the option', () => {
    const error = thrown(() => resolveOptions({ authenticator, historySize: 0 }));
    expect(error).toBeInstanceOf(OptionError);
    expect(error.message).toBe('option historySize must be a positive integer, got 0');
    expect(
      thrown(() => resolveOptions({ authenticator, limits: { maxFrameBytes: -1 } })).message,
    ).toBe('option limits.maxFrameBytes must be a positive integer, got -1');
    expect(thrown(() => resolveOptions({ authenticator, path: 'ws' }))).toBeInstanceOf(OptionError);
  });

  it('limits.coalesceAboveBytes must be over what a socket holds for a turn and at most maxBufferedBytes', () => {
    const refused = (limits: { coalesceAboveBytes: number; maxBufferedBytes?: number }) =>
      thrown(() => resolveOptions({ authenticator, limits }));
    expect(refused({ coalesceAboveBytes: 16 * 1024 })).toBeInstanceOf(OptionError);
    expect(refused({ coalesceAboveBytes: 64 * 1024, maxBufferedBytes: 32 * 1024 }).message).toMatch(
      /^option limits\.coalesceAboveBytes must be over 16384/,
    );
    expect(
      resolveOptions({ authenticator, limits: { coalesceAboveBytes: 16 * 1024 + 1 } }).limits
        .coalesceAboveBytes,
    ).toBe(16 * 1024 + 1);
  });

  it('the gateway and the CLI take the history defaults from one place', () => {
    expect(resolveOptions({ authenticator })).toMatchObject(HISTORY_DEFAULTS);
    const { values } = readOptions(SERVE_OPTIONS, {}, {});
    expect(values).toMatchObject(HISTORY_DEFAULTS);
  });
});

describe('text kinds', () => {
  it('write every default so that its kind reads it back', () => {
    for (const spec of SERVE_OPTIONS as readonly OptionSpec[]) {
      if (spec.default === undefined) continue;
      expect(readKind(spec.kind, defaultText(spec), spec.flag, spec), spec.flag).toEqual(
        spec.default,
      );
    }
  });

  it('format durations and sizes to text that parses back to the same value', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 ** 12 }), (ms) => {
        expect(parseDuration(formatDuration(ms))).toBe(ms);
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 40 }), (bytes) => {
        expect(parseSize(formatSize(bytes))).toBe(bytes);
      }),
    );
    expect(formatDuration(3_600_000)).toBe('1h');
    expect(formatSize(64 * 1024)).toBe('64KiB');
    expect(formatKind('seconds', 5)).toBe('5s');
  });

  it.each([
    ['port', '65536', '--port must be an integer from 0 to 65535, got "65536"'],
    ['positive-integer', '0', '--n must be a positive integer, got "0"'],
    ['non-negative-integer', '-1', '--n must be a non-negative integer, got "-1"'],
    ['duration', '0s', '--n must be a duration like 500ms, 30s, 5m or 1h, got "0s"'],
    ['seconds', '1500ms', '--n must be a whole number of seconds like 0, 5s or 2m, got "1500ms"'],
    ['size', '1MB', '--n must be a size like 65536, 64KiB or 1MiB, got "1MB"'],
    ['boolean', 'maybe', '--n must be true or false, got "maybe"'],
    ['string', '  ', '--n must not be empty'],
    ['url', 'ftp://x', '--n must be a https:// URL'],
    ['ip-addresses', '10.0.0.1,host', '--n: "host" is not an IP address'],
  ] as const)('%s refuses %j', (kind, text, expected) => {
    const error = thrown(() => readKind(kind, text, kind === 'port' ? '--port' : '--n'));
    expect(error).toBeInstanceOf(OptionError);
    expect(error.message).toBe(expected);
  });

  it('reads each kind', () => {
    expect(readKind('port', '0', '--port')).toBe(0);
    expect(readKind('non-negative-integer', '0', '--n')).toBe(0);
    expect(readKind('seconds', '0', '--n')).toBe(0);
    expect(readKind('seconds', '90', '--n')).toBe(90);
    expect(readKind('seconds', '2m', '--n')).toBe(120);
    expect(readKind('boolean', 'off', '--n')).toBe(false);
    expect(readKind('list', 'a, b,,c', '--n')).toEqual(['a', 'b', 'c']);
    expect(readKind('enum', 'Evict-Oldest', '--n', { choices: ['reject', 'evict-oldest'] })).toBe(
      'evict-oldest',
    );
    expect(readKind('url', 'rediss://h:1', '--n', { protocols: ['redis:', 'rediss:'] })).toBe(
      'rediss://h:1',
    );
  });
});
