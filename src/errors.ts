/**
 * The one error class of the server side: a stable `code` from the protocol's
 * table (`protocol/error-codes.ts`), its HTTP status, and the field at fault.
 */
import { ERROR_CODES, type ErrorBody, type ErrorCode } from './protocol/error-codes.js';
import type { RunGrammarCode } from './runs/run-grammar.js';

/** Seconds a client waits before retrying after a 503 or a connection-limit 429. */
export const RETRY_AFTER_SECONDS = 5;

export class GatewayError extends Error {
  override readonly name = 'GatewayError';
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly field?: string,
    /** Seconds, for 429 and 503 answers. */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.status = ERROR_CODES[code].status;
  }

  toBody(): ErrorBody {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.field !== undefined ? { field: this.field } : {}),
      },
    };
  }
}

/**
 * An event broke the run grammar (`runs/run-grammar.ts`): the engine refused
 * it in `strict` mode, nothing was stored or sent and no seq was used. HTTP
 * answers 409 with `code`; the in-process API throws it as is.
 */
export class RunGrammarError extends GatewayError {
  constructor(
    override readonly code: RunGrammarCode,
    message: string,
  ) {
    super(code, message);
  }
}
