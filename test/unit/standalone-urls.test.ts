import { describe, expect, it } from 'vitest';
import { reachableUrl, redisForLogs } from '../../src/server/standalone.js';

describe('standalone server URLs', () => {
  it('announces a loopback URL when listening on every interface', () => {
    expect(reachableUrl({ address: '0.0.0.0', family: 'IPv4', port: 80 })).toBe(
      'http://127.0.0.1:80',
    );
    expect(reachableUrl({ address: '::', family: 'IPv6', port: 81 })).toBe('http://[::1]:81');
    expect(reachableUrl({ address: '::1', family: 'IPv6', port: 82 })).toBe('http://[::1]:82');
    expect(reachableUrl({ address: '10.1.2.3', family: 'IPv4', port: 83 })).toBe(
      'http://10.1.2.3:83',
    );
  });

  it('logs a Redis URL without user, password or query', () => {
    expect(redisForLogs('redis://admin:hunter2@cache.internal:6380/2?name=x')).toBe(
      'redis://cache.internal:6380/2',
    );
    expect(redisForLogs('rediss://:hunter2@cache.internal')).toBe('rediss://cache.internal');
    expect(redisForLogs(null)).toBeNull();
  });
});
