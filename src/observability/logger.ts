/**
 * Structured logs (pino). Nothing secret reaches a log: request URLs go
 * through `redactUrl` (query strings dropped), and the redaction paths cover
 * every field that could hold a token, ticket, API key or a client's command
 * arguments (the Redis password).
 */
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

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
  // A client's command arguments (an ioredis reply error carries
  // `command: { name, args }`; AUTH's args hold the Redis password).
  'command.args',
  '*.command.args',
  '*.*.command.args',
];

/**
 * The `err` serializer: pino's, minus `command` (see REDACT_PATHS). Code logs
 * `err: error.message` (a string, kept as it is); this is the defence for an
 * error object logged whole.
 */
function serializeError(value: unknown): unknown {
  if (!(value instanceof Error)) return value;
  const { command: _command, ...rest } = pino.stdSerializers.err(value) as unknown as Record<
    string,
    unknown
  >;
  return rest;
}

/** `destination`: where lines go. Default: stdout. */
export function createLogger(options: LoggerOptions = {}, destination?: DestinationStream): Logger {
  const settings: LoggerOptions = {
    level: process.env.LOG_LEVEL ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    ...options,
    serializers: { err: serializeError, ...options.serializers },
  };
  return destination === undefined ? pino(settings) : pino(settings, destination);
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
