/**
 * Watches `console.warn` and `console.error` for each test of a file: the
 * stock `@ag-ui/client` reports a dropped field or a malformed event there
 * (`[ag-ui] …`) instead of failing, so a test that must be clean asserts that
 * nothing was written. Call once at the top level of a test file.
 */
import { afterEach, beforeEach, expect, vi, type MockInstance } from 'vitest';

export function watchConsoleNoise(): { expectNoConsoleNoise(): void } {
  let warn: MockInstance | null = null;
  let error: MockInstance | null = null;
  beforeEach(() => {
    warn = vi.spyOn(console, 'warn');
    error = vi.spyOn(console, 'error');
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });
  return {
    expectNoConsoleNoise(): void {
      expect(warn?.mock.calls).toEqual([]);
      expect(error?.mock.calls).toEqual([]);
    },
  };
}
