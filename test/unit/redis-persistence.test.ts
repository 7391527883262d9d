/**
 * What a Redis's persistence settings prove (src/broker/redis/persistence.ts):
 * only `appendonly yes` + `appendfsync always` keeps every acknowledged write
 * across a crash; anything else, or settings that cannot be read, is unproven.
 */
import { describe, expect, it } from 'vitest';
import { judgePersistence, parseRunId } from '../../src/broker/redis/persistence.js';

const settings = (appendonly: string, appendfsync: string, save: string): Map<string, string> =>
  new Map([
    ['appendonly', appendonly],
    ['appendfsync', appendfsync],
    ['save', save],
  ]);

describe('judgePersistence', () => {
  it('proves only appendonly yes with appendfsync always', () => {
    expect(judgePersistence(settings('yes', 'always', ''))).toMatchObject({
      proven: true,
      appendonly: 'yes',
      appendfsync: 'always',
    });
    for (const [appendonly, appendfsync, save] of [
      ['yes', 'everysec', ''],
      ['yes', 'no', '3600 1'],
      ['no', 'always', '3600 1 300 100'],
      ['no', 'everysec', ''],
    ] as const) {
      const judged = judgePersistence(settings(appendonly, appendfsync, save));
      expect(judged.proven).toBe(false);
      expect(judged.summary).toMatch(/new epoch/);
      expect(judged.summary).toContain(`appendfsync ${appendfsync}`);
    }
  });

  it('treats settings it could not read as unproven, and says why', () => {
    const judged = judgePersistence(new Error("ERR unknown command 'CONFIG'"));
    expect(judged).toMatchObject({
      proven: false,
      appendonly: null,
      appendfsync: null,
      save: null,
    });
    expect(judged.summary).toMatch(/CONFIG GET failed: ERR unknown command 'CONFIG'.*unproven/);
    expect(judgePersistence(new Map()).proven).toBe(false);
  });
});

describe('parseRunId', () => {
  it('reads run_id from INFO server, and nothing from a reply without one', () => {
    const info =
      '# Server\r\nredis_version:7.0.15\r\nrun_id:1c43b2908bf4c1a3c469a59b6cc74a9cf0ee7963\r\ntcp_port:6379\r\n';
    expect(parseRunId(info)).toBe('1c43b2908bf4c1a3c469a59b6cc74a9cf0ee7963');
    expect(parseRunId('# Server\r\nredis_version:7.0.15\r\n')).toBeUndefined();
  });
});
