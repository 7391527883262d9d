/** The authentication layer: user tokens, API keys, tickets. */
export {
  AuthError,
  type AuthFailureReason,
  type UserAuthenticator,
  type VerifiedUser,
} from './authenticator.js';
export { TICKET_TTL_MS, type IssuedTicket, type TicketStore } from './ticket-store.js';
export {
  createJwtAuthenticator,
  DEFAULT_LEEWAY_SECONDS,
  DEFAULT_MAX_TOKEN_LENGTH,
  MIN_SECRET_BYTES,
  type JwtAuthenticatorOptions,
} from './jwt-authenticator.js';
export { ApiKeys, looksLikeJwt, MAX_API_KEY_LENGTH, MIN_API_KEY_LENGTH } from './api-keys.js';
export {
  DEFAULT_MAX_TICKETS,
  DEFAULT_MAX_TICKETS_PER_USER,
  MemoryTicketStore,
  type MemoryTicketStoreOptions,
} from './memory-ticket-store.js';
export { mintDevToken, type DevTokenOptions } from './dev-token.js';
