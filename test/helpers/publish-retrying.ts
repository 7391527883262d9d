/**
 * A publish straight on a broker, retried while the engine says it is
 * unavailable (a Redis restarting, a shard failing over, a node that has not
 * probed the new run yet). The event keeps its id, so a retry whose first
 * try was applied is deduplicated, never stored twice.
 */
import {
  BrokerUnavailableError,
  type Broker,
  type PublishOutcome,
} from '../../src/broker/broker.js';
import type { EncodedEvent } from '../../src/protocol/event-frame.js';
import { waitFor } from './wait-for.js';

/** Publishes, retrying `BrokerUnavailableError` until the deadline (15 s); other errors throw. */
export async function publishRetrying(
  broker: Broker,
  userId: string,
  event: EncodedEvent,
): Promise<PublishOutcome> {
  let lastError = '';
  return waitFor(
    async () => {
      try {
        return await broker.publish(userId, event);
      } catch (error) {
        if (!(error instanceof BrokerUnavailableError)) throw error;
        lastError = error.message;
        return undefined;
      }
    },
    { timeoutMs: 15_000, intervalMs: 20, what: `publish ${event.id ?? ''} (${lastError})` },
  );
}
