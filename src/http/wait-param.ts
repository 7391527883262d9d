/**
 * The `?wait=`-style query parameters (a publish's `wait`, an AG-UI stream's
 * `waitMs`): how long a request may be held, bounded by the gateway's
 * `MAX_WAIT_MS` (30 s).
 */
import { GatewayError } from '../errors.js';
import { MAX_WAIT_MS } from '../gateway/publisher.js';

/** `?wait=ms` (or another name): absent → 0; otherwise an integer from 0 to 30 000. */
export function parseWait(query: URLSearchParams, name = 'wait'): number {
  const values = query.getAll(name);
  if (values.length === 0) return 0;
  const [value] = values;
  if (values.length > 1 || !/^\d{1,6}$/.test(value ?? '') || Number(value) > MAX_WAIT_MS) {
    throw new GatewayError(
      'bad_request',
      `${name} must be an integer number of ms from 0 to ${MAX_WAIT_MS}`,
      name,
    );
  }
  return Number(value);
}
