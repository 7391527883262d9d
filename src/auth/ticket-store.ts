/**
 * The single-use tickets of `POST /v1/tickets` (PROTOCOL.md sections 2 and 5):
 * a short random string that opens one connection for the user it was issued
 * to, within 30 s, once.
 *
 * Implementations: `memory-ticket-store.ts` (one process) and, with Redis, one
 * shared by every node so a ticket issued by node A opens a socket on node B.
 */
import type { VerifiedUser } from './authenticator.js';

export interface IssuedTicket {
  ticket: string;
  /** ms since the epoch. */
  expiresAt: number;
}

export interface TicketStore {
  issue(user: VerifiedUser): Promise<IssuedTicket>;
  /** The user the ticket was issued to, or null if unknown, used or expired. Consumes it. */
  consume(ticket: string): Promise<VerifiedUser | null>;
  /** Drops expired tickets (a supervised background task calls it). */
  sweep(now: number): Promise<number>;
}

export const TICKET_TTL_MS = 30_000;
