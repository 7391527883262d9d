import { describe, expect, it } from 'vitest';
import { validateEventData } from '../../src/protocol/event-input.js';

// The flat payload skips the nesting walk: the depth limit must still hold on both sides of it.
describe('validateEventData nesting', () => {
  it('takes a flat object or array at a depth limit of 1', () => {
    expect(validateEventData({ text: 'hi', n: 1, none: null }, 1024, 1).ok).toBe(true);
    expect(validateEventData(['a', 1, null], 1024, 1).ok).toBe(true);
  });

  it('refuses one level more than the limit, in an object and in an array', () => {
    for (const data of [{ inner: {} }, [[]], { list: [1] }]) {
      const checked = validateEventData(data, 1024, 1);
      expect(checked.ok).toBe(false);
      if (!checked.ok) expect(checked.failure.message).toMatch(/more than 1 deep/);
    }
    expect(validateEventData({ inner: { leaf: 1 } }, 1024, 2).ok).toBe(true);
  });
});
