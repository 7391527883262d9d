import { EventType } from '@ag-ui/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_CURSOR_EPOCH_LENGTH,
  compareAguiPositions,
  formatAguiCursor,
  parseAguiCursor,
  type AguiPosition,
} from '../../src/agui/agui-cursor.js';
import {
  SSE_KEEP_ALIVE,
  encodeSseComment,
  encodeSseEvent,
  parseLastEventId,
} from '../../src/agui/sse-encoding.js';

const arbitraryPosition: fc.Arbitrary<AguiPosition> = fc.record({
  epoch: fc.stringMatching(/^[A-Za-z0-9._-]{1,40}$/),
  seq: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
  index: fc.option(fc.nat({ max: 999 }), { nil: null }),
});

describe('encodeSseEvent', () => {
  it('frames one event as id and data lines ending in a blank line, LF only', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (name, text) => {
        const frame = encodeSseEvent({
          cursor: 'e_1:7.2',
          event: { type: EventType.CUSTOM, name, value: `${text}\r\n\u2028` },
        });
        expect(frame).not.toContain('\r');
        expect(frame.endsWith('\n\n')).toBe(true);
        const lines = frame.slice(0, -2).split('\n');
        expect(lines).toHaveLength(2);
        expect(lines[0]).toBe('id: e_1:7.2');
        expect(JSON.parse((lines[1] ?? '').slice('data: '.length))).toEqual({
          type: EventType.CUSTOM,
          name,
          value: `${text}\r\n\u2028`,
        });
      }),
    );
  });

  it('writes no id line for a restated event (null cursor)', () => {
    const frame = encodeSseEvent({
      cursor: null,
      event: { type: EventType.RUN_STARTED, threadId: 't', runId: 'r' },
    });
    expect(frame).toBe('data: {"type":"RUN_STARTED","threadId":"t","runId":"r"}\n\n');
  });
});

describe('SSE comments', () => {
  it('keeps a stream alive with a comment line', () => {
    expect(SSE_KEEP_ALIVE).toBe(': keep-alive\n\n');
    expect(encodeSseComment('hello')).toBe(': hello\n\n');
  });

  it('refuses a line break, which would end the comment early', () => {
    expect(() => encodeSseComment('a\nb')).toThrow(/line break/);
    expect(() => encodeSseComment('a\rb')).toThrow(/line break/);
  });
});

describe('cursors', () => {
  it('parse back to the position they were formatted from', () => {
    fc.assert(
      fc.property(arbitraryPosition, (position) => {
        expect(parseAguiCursor(formatAguiCursor(position))).toEqual({ ok: true, value: position });
      }),
    );
  });

  it('order a group part before the whole event, and seqs by seq', () => {
    fc.assert(
      fc.property(arbitraryPosition, arbitraryPosition, (a, b) => {
        const order = compareAguiPositions(a, b);
        if (a.seq !== b.seq) expect(Math.sign(order)).toBe(Math.sign(a.seq - b.seq));
        else if (a.index === b.index) expect(order).toBe(0);
        else if (a.index === null) expect(order).toBeGreaterThan(0);
        else if (b.index === null) expect(order).toBeLessThan(0);
        else expect(Math.sign(order)).toBe(Math.sign(a.index - b.index));
      }),
    );
  });
});

describe('parseLastEventId', () => {
  it('reads no header, or an empty one, as no cursor (snapshot mode)', () => {
    expect(parseLastEventId(undefined)).toEqual({ ok: true, value: null });
    expect(parseLastEventId('')).toEqual({ ok: true, value: null });
    expect(parseLastEventId('  ')).toEqual({ ok: true, value: null });
  });

  it('reads a cursor, the whole event or a part of its group', () => {
    expect(parseLastEventId('e_ab12:42')).toEqual({
      ok: true,
      value: { epoch: 'e_ab12', seq: 42, index: null },
    });
    expect(parseLastEventId('e_ab12:42.3')).toEqual({
      ok: true,
      value: { epoch: 'e_ab12', seq: 42, index: 3 },
    });
  });

  it.each([
    '42',
    ':42',
    'e_1:',
    'e_1:-1',
    'e_1:+4',
    'e_1:042',
    'e_1:4.01',
    'e_1:4.1000',
    'e_1:4.',
    'e_1:4.x',
    'e_1:1e3',
    'e_1:99999999999999999',
    'e_1:9999999999999999',
    'e 1:4',
    'e_1:4 5',
    `${'e'.repeat(MAX_CURSOR_EPOCH_LENGTH + 1)}:4`,
  ])('rejects %j, naming the header', (value) => {
    const parsed = parseLastEventId(value);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.failure.field).toBe('Last-Event-ID');
      expect(parsed.failure.message).toMatch(/^Last-Event-ID/);
    }
  });

  it('rejects a header sent twice', () => {
    const parsed = parseLastEventId(['e_1:4', 'e_1:5']);
    expect(parsed).toEqual({
      ok: false,
      failure: { field: 'Last-Event-ID', message: 'Last-Event-ID may be sent only once' },
    });
  });
});
