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
