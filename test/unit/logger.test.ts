/**
 * Defence in depth of the logger: an error object logged whole keeps its
 * message and stack, but never a client's command arguments (an ioredis reply
 * error carries `command: { name, args }`, and AUTH's args hold the password).
 */
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { LogCapture } from '../helpers/log-capture.js';

function replyError(message: string, args: string[]): Error {
  return Object.assign(new Error(message), { name: 'ReplyError', command: { name: 'auth', args } });
}

describe('createLogger', () => {
  it('drops the command arguments of an error logged as err', () => {
    const capture = new LogCapture();
    const logger = createLogger({ level: 'debug' }, capture);
    logger.warn({ err: replyError('WRONGPASS invalid password', ['s3cret-pw']) }, 'link error');
    const line = JSON.parse(capture.text) as { err: { message: string; command?: unknown } };
    expect(line.err.message).toBe('WRONGPASS invalid password');
    expect(capture.text).not.toContain('s3cret-pw');
  });

  it('keeps an err that is a message as it is', () => {
    const capture = new LogCapture();
    createLogger({ level: 'debug' }, capture).warn({ err: 'Connection is closed.' }, 'link error');
    expect((JSON.parse(capture.text) as { err: unknown }).err).toBe('Connection is closed.');
  });

  it('drops the command arguments of an error under another key', () => {
    const capture = new LogCapture();
    const logger = createLogger({ level: 'debug' }, capture);
    logger.error({ cause: replyError('NOAUTH', ['s3cret-pw']) }, 'failed');
    logger.error({ failure: { command: { name: 'auth', args: ['s3cret-pw'] } } }, 'failed');
    expect(capture.text).toContain('failed');
    expect(capture.text).not.toContain('s3cret-pw');
  });
});
