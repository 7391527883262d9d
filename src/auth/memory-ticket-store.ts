/**
 * Tickets of one process (PROTOCOL.md sections 2 and 5): 32 random bytes,
 * base64url, valid for `ttlMs` (30 s) and consumed by their first use.
 *
 * Contract:
 * - a ticket opens at most one connection: `consume` removes it before it
 *   checks anything else, so a second `consume` always gets null;
 * - a ticket never outlives the token it was issued with: it expires at the
 *   earlier of its own TTL and the token's `expiresAt`, and `consume` returns
 *   the user exactly as issued (same `expiresAt`), so the connection it opens
 *   is closed when the token would have expired;
 * - bounded: at most `maxPerUser` live tickets per user (issuing one more drops
 *   that user's oldest) and `maxTickets` in all (issuing one more first drops
 *   the tickets whose TTL is over, then, if still full, the oldest ticket).
 */
import { randomBytes } from 'node:crypto';
import { positiveInteger } from '../options/validators.js';
import type { VerifiedUser } from './authenticator.js';
import { TICKET_TTL_MS, type IssuedTicket, type TicketStore } from './ticket-store.js';

export interface MemoryTicketStoreOptions {
  /** How long a ticket is valid, in ms. Default `TICKET_TTL_MS` (30 000). */
  ttlMs?: number;
  /** Live tickets in the store. Default 100 000. */
  maxTickets?: number;
  /** Live tickets per user. Default 20. */
  maxPerUser?: number;
  /** The clock, in ms since the epoch. Default `Date.now`. */
  now?: () => number;
}

interface Entry {
  readonly user: VerifiedUser;
  /** End of the ticket's TTL: non-decreasing in insertion order while the clock is. */
  readonly ttlEndsAt: number;
  /** min(ttlEndsAt, user.expiresAt). */
  readonly expiresAt: number;
}

export const DEFAULT_MAX_TICKETS = 100_000;
export const DEFAULT_MAX_TICKETS_PER_USER = 20;

export class MemoryTicketStore implements TicketStore {
  readonly #ttlMs: number;
  readonly #maxTickets: number;
  readonly #maxPerUser: number;
  readonly #now: () => number;
  /** Insertion order is issue order, so the first entry is the oldest ticket. */
  readonly #tickets = new Map<string, Entry>();
  /** Each user's live tickets, oldest first. Holds no user without a ticket. */
  readonly #byUser = new Map<string, Set<string>>();

  constructor(options: MemoryTicketStoreOptions = {}) {
    this.#ttlMs = positiveInteger('options.ttlMs', options.ttlMs ?? TICKET_TTL_MS);
    this.#maxTickets = positiveInteger(
      'options.maxTickets',
      options.maxTickets ?? DEFAULT_MAX_TICKETS,
    );
    this.#maxPerUser = positiveInteger(
      'options.maxPerUser',
      options.maxPerUser ?? DEFAULT_MAX_TICKETS_PER_USER,
    );
    if (options.now !== undefined && typeof options.now !== 'function') {
      throw new TypeError('options.now must be a function');
    }
    // Read through a closure, not captured: fake clocks installed later still apply.
    this.#now = options.now ?? ((): number => Date.now());
  }

  /** Tickets held, expired ones not yet swept included. */
  get size(): number {
    return this.#tickets.size;
  }

  async issue(user: VerifiedUser): Promise<IssuedTicket> {
    const now = this.#now();
    const mine = this.#byUser.get(user.userId);
    if (mine !== undefined && mine.size >= this.#maxPerUser) {
      const oldest = mine.values().next();
      if (oldest.done !== true) this.#delete(oldest.value);
    }
    if (this.#tickets.size >= this.#maxTickets) this.#dropTtlExpired(now);
    if (this.#tickets.size >= this.#maxTickets) {
      const oldest = this.#tickets.keys().next();
      if (oldest.done !== true) this.#delete(oldest.value);
    }

    const ticket = randomBytes(32).toString('base64url');
    const ttlEndsAt = now + this.#ttlMs;
    const expiresAt = user.expiresAt === null ? ttlEndsAt : Math.min(ttlEndsAt, user.expiresAt);
    this.#tickets.set(ticket, { user, ttlEndsAt, expiresAt });
    const set = this.#byUser.get(user.userId) ?? new Set<string>();
    set.add(ticket);
    this.#byUser.set(user.userId, set);
    return { ticket, expiresAt };
  }

  async consume(ticket: string): Promise<VerifiedUser | null> {
    if (typeof ticket !== 'string') return null;
    const entry = this.#tickets.get(ticket);
    if (entry === undefined) return null;
    this.#delete(ticket);
    return this.#now() < entry.expiresAt ? entry.user : null;
  }

  async sweep(now: number): Promise<number> {
    let dropped = 0;
    for (const [ticket, entry] of this.#tickets) {
      if (entry.expiresAt <= now) {
        this.#delete(ticket);
        dropped++;
      }
    }
    return dropped;
  }

  /**
   * Drops the tickets whose TTL is over, from the oldest on: O(dropped), since TTL ends are in
   * issue order. Tickets cut short by their token's expiry wait for `sweep` or `consume`.
   */
  #dropTtlExpired(now: number): void {
    for (const [ticket, entry] of this.#tickets) {
      if (entry.ttlEndsAt > now) return;
      this.#delete(ticket);
    }
  }

  #delete(ticket: string): void {
    const entry = this.#tickets.get(ticket);
    if (entry === undefined) return;
    this.#tickets.delete(ticket);
    const set = this.#byUser.get(entry.user.userId);
    set?.delete(ticket);
    if (set?.size === 0) this.#byUser.delete(entry.user.userId);
  }
}
