/**
 * Keeps the token of an open connection fresh: plans a `refresh` frame
 * `refreshLeadMs` before the token's `exp` (see `refreshDelay`), asks the
 * provider for a new token then, and plans again when the server answers
 * `refreshed` or the provider fails. A fixed string token, or one without
 * `exp`, is never refreshed.
 */
import { refreshDelay } from './client-timers.js';
import { jwtExpiresAt } from './jwt-expiry.js';
import type { TokenFetcher } from './token-fetcher.js';
import type { WebSocketLike } from './websocket-like.js';

/** The connection a refresh is for, as the refresher sees it. */
export interface RefreshTarget {
  /** Whether `socket` is still the client's current socket. */
  isCurrent(socket: WebSocketLike): boolean;
  /** Sends the `refresh` frame with the new token. */
  send(token: string): void;
  /** The provider failed; the refresher plans again. */
  failed(cause: unknown): void;
}

export class TokenRefresher {
  readonly #tokens: TokenFetcher;
  readonly #refreshLeadMs: number;
  readonly #fetchTimeoutMs: number;
  readonly #target: RefreshTarget;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The token the current connection was opened or last refreshed with. */
  token: string | null = null;

  constructor(
    tokens: TokenFetcher,
    refreshLeadMs: number,
    fetchTimeoutMs: number,
    target: RefreshTarget,
  ) {
    this.#tokens = tokens;
    this.#refreshLeadMs = refreshLeadMs;
    this.#fetchTimeoutMs = fetchTimeoutMs;
    this.#target = target;
  }

  /** Plans the next refresh of `socket`'s token; none without a socket (no timer to leak). */
  plan(socket: WebSocketLike | null): void {
    this.stop();
    if (!socket || this.#tokens.fixed || this.token === null) return;
    const expiresAt = jwtExpiresAt(this.token);
    if (expiresAt === null) return;
    // Past setTimeout's limit the timer would fire at once: `capped` waits the
    // longest allowed delay, then plans again from the clock instead of refreshing.
    const { delayMs, capped } = refreshDelay(expiresAt, Date.now(), this.#refreshLeadMs);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#target.isCurrent(socket)) return;
      if (capped) this.plan(socket);
      else void this.#refresh(socket);
    }, delayMs);
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #refresh(socket: WebSocketLike): Promise<void> {
    let token: string;
    try {
      token = await this.#tokens.fetchWithin(this.#fetchTimeoutMs);
    } catch (cause) {
      // The client closed or moved on while the provider ran: no retry for a socket left behind.
      if (!this.#target.isCurrent(socket)) return;
      this.#target.failed(cause);
      this.plan(socket);
      return;
    }
    if (!this.#target.isCurrent(socket)) return;
    this.token = token;
    this.#target.send(token);
  }
}
