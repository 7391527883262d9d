import { readFileSync } from 'node:fs';
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  CLOSE_CODES,
  CloseCode,
  ERROR_CODES,
  closeCodeInfo,
  decodeClientFrame,
  reconnectAdvice,
  type ErrorCode,
  type ErrorFrame,
} from '../../src/protocol/index.js';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

describe('error and close code tables', () => {
  it('documents every error code with its status and meaning', () => {
    for (const [code, { status, meaning }] of Object.entries(ERROR_CODES)) {
      expect(doc).toContain(`| \`${code}\` | ${status} | ${meaning}`);
    }
  });

  it('types the code of an error frame as a code of the table', () => {
    // Checked by tsc (tsconfig.json covers test/): a bare string no longer fits.
    expectTypeOf<ErrorFrame['code']>().toEqualTypeOf<ErrorCode>();
    const frame: ErrorFrame = { type: 'error', code: 'bad_ack', message: 'unknown seq' };
    expect(ERROR_CODES[frame.code].status).toBe(400);
  });

  it('documents every close code with its advice', () => {
    for (const info of CLOSE_CODES) {
      expect(doc).toContain(
        `| ${info.code} | ${info.name} | ${info.meaning} | ${info.reconnect} |`,
      );
      expect(CloseCode[info.name]).toBe(info.code);
    }
    expect(CLOSE_CODES).toHaveLength(Object.keys(CloseCode).length);
  });

  it('documents no close code that the table lacks', () => {
    const documented = [...doc.matchAll(/^\| (\d{4}) \| (\w+) \|/gm)].map((row) => [
      Number(row[1]),
      row[2],
    ]);
    expect(documented).toEqual(CLOSE_CODES.map((info) => [info.code, info.name]));
  });

  it('names the codes ws sends and the one a client reports for a dropped socket', () => {
    expect(CloseCode.ProtocolError).toBe(1002);
    expect(CloseCode.AbnormalClosure).toBe(1006);
    expect(CloseCode.InvalidPayload).toBe(1007);
    expect(closeCodeInfo(1006)?.name).toBe('AbnormalClosure');
  });

  it('advises reconnecting after transport failures and stopping after policy closes', () => {
    expect(reconnectAdvice(1006)).toBe('reconnect');
    expect(reconnectAdvice(4429)).toBe('reconnect');
    expect(reconnectAdvice(4403)).toBe('stop');
    expect(reconnectAdvice(4401)).toBe('refresh-token');
  });
});

describe('client frame decoding', () => {
  it.each([
    ['{"type":"ack","seq":3}', { type: 'ack', seq: 3 }],
    ['{"type":"ping"}', { type: 'ping' }],
    ['{"type":"pong"}', { type: 'pong' }],
    ['{"type":"refresh","token":"abc"}', { type: 'refresh', token: 'abc' }],
  ])('accepts %s', (text, frame) => {
    expect(decodeClientFrame(text)).toEqual({ ok: true, frame });
  });

  it.each([
    'not json',
    '[]',
    'null',
    '{"type":"ack","seq":-1}',
    '{"type":"ack","seq":1.5}',
    '{"type":"ack"}',
    '{"type":"refresh","token":""}',
    '{"type":"subscribe","userId":"bob"}',
    '{"seq":1}',
  ])('refuses %s', (text) => {
    expect(decodeClientFrame(text).ok).toBe(false);
  });
});
