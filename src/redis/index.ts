/**
 * `agentsocket/redis`: the Redis engine for several gateway nodes. Needs the
 * optional peer dependency `ioredis`. See docs/redis.md.
 */
export {
  RedisBroker,
  reconnectDelay,
  type RedisBrokerOptions,
} from '../broker/redis/redis-broker.js';
export { RedisTicketStore, type RedisTicketStoreOptions } from '../auth/redis-ticket-store.js';
export { BrokerUnavailableError } from '../broker/broker.js';
