/**
 * Structured logs (pino). Nothing secret reaches a log: request URLs go
 * through `redactUrl` (query strings dropped), and the redaction paths cover
 * every field that could hold a token, ticket or API key.
 */
import { pino, type Logger, type LoggerOptions } from 'pino';

export const REDACT_PATHS = [
  'token',
  'ticket',
  'apiKey',
  'authorization',
  '*.token',
  '*.ticket',
  '*.apiKey',
  '*.authorization',
  'req.headers.authorization',
  'req.headers["sec-websocket-protocol"]',
  'headers.authorization',
  'headers["sec-websocket-protocol"]',
];

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino({
    level: process.env.LOG_LEVEL ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    ...options,
  });
}

/** A silent logger for embedders and tests that want none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** The path of a request URL without its query string: queries may carry tickets or cursors. */
export function redactUrl(url: string | undefined): string {
  if (!url) return '';
  const q = url.indexOf('?');
  return q === -1 ? url : `${url.slice(0, q)}?[redacted]`;
}
