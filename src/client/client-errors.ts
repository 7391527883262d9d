/** Errors the SDK's promises reject with. None carries a token. */
import type { ClosedInfo } from './client-types.js';

/** The client reached `closed` (by `close()` or a close code that says stop) before the wait ended. */
export class ClientClosedError extends Error {
  override readonly name = 'ClientClosedError';
  readonly code: number;
  readonly reason: string;
  constructor(info: ClosedInfo) {
    super(`client closed (${info.code}${info.reason ? `: ${info.reason}` : ''})`);
    this.code = info.code;
    this.reason = info.reason;
  }
}

/** A `waitForEvent` deadline passed. */
export class WaitTimeoutError extends Error {
  override readonly name = 'WaitTimeoutError';
}

/** An HTTP request of the SDK (`fetchRuns`, `fetchRun`) failed: no answer, or not a 2xx. */
export class RunsRequestError extends Error {
  override readonly name = 'RunsRequestError';
  /** The HTTP status; 0 when no answer came (network, timeout). */
  readonly status: number;
  /** The gateway's error code (`unauthorized`, `not_found`, …), when it sent one. */
  readonly code: string | undefined;
  constructor(message: string, status: number, code?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
    this.code = code;
  }
}
