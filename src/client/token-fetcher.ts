/**
 * Gets a token from the app's `token` option (a string or a provider), checked
 * and bounded in time: a provider that never answers counts as a failed one.
 */
import { MAX_TOKEN_LENGTH } from '../protocol/codec.js';
import type { TokenSource } from './client-types.js';

export class TokenFetcher {
  readonly #source: TokenSource;
  /** The pending bound of the current fetch; `cancel` drops it, so a closed client keeps no timer. */
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(source: TokenSource) {
    this.#source = source;
  }

  /** True when the token is a fixed string: it cannot be renewed. */
  get fixed(): boolean {
    return typeof this.#source === 'string';
  }

  /** A checked token, rejected after `timeoutMs`. A new fetch drops the bound of the last one. */
  fetchWithin(timeoutMs: number): Promise<string> {
    clearTimeout(this.#timer);
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.#timer === timer) this.#timer = undefined;
        reject(new Error(`the token provider gave no token within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#timer = timer;
      const done = (): void => {
        clearTimeout(timer);
        if (this.#timer === timer) this.#timer = undefined;
      };
      this.#fetch().then(
        (token) => {
          done();
          resolve(token);
        },
        (cause: unknown) => {
          done();
          reject(cause);
        },
      );
    });
  }

  /** Drops the pending bound (the fetch itself cannot be stopped; its answer is ignored by the caller). */
  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #fetch(): Promise<string> {
    const source = this.#source;
    const token = typeof source === 'string' ? source : await source();
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
      throw new TypeError(`the token must be a non-empty string of at most ${MAX_TOKEN_LENGTH}`);
    }
    if (/\s/.test(token)) throw new TypeError('the token must not contain whitespace');
    return token;
  }
}
