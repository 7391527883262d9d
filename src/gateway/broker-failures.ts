/**
 * Broker failure → `GatewayError`, in one place: a step the engine could not
 * do (`BrokerUnavailableError`) answers 503 with `Retry-After`; any other
 * failure of a broker step is an internal error of that step. Each failure
 * is counted and logged once, here.
 */
import type { Logger } from 'pino';
import { BrokerUnavailableError } from '../broker/broker.js';
import { GatewayError, RETRY_AFTER_SECONDS } from '../errors.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { NodeStats } from './node-stats.js';

/** The answer while the engine cannot serve: 503, retry later. */
export function brokerUnavailable(): GatewayError {
  return new GatewayError('unavailable', 'broker unavailable', undefined, RETRY_AFTER_SECONDS);
}

/** The `GatewayError` for a failed broker step, without counting it (callers outside a node). */
export function gatewayErrorOf(op: string, error: unknown): GatewayError {
  if (error instanceof GatewayError) return error;
  if (error instanceof BrokerUnavailableError) return brokerUnavailable();
  return new GatewayError('internal', `${op} failed`);
}

export class BrokerFailures {
  constructor(
    private readonly stats: NodeStats,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {}

  /** Counts and logs the failure of broker step `op`, and returns what to answer. */
  map(op: string, error: unknown): GatewayError {
    if (error instanceof GatewayError) return error;
    this.stats.countError(`broker_${op}`);
    this.metrics.brokerErrors.inc({ op });
    this.logger.error({ op, err: (error as Error).message }, 'broker operation failed');
    return gatewayErrorOf(op, error);
  }

  /** A background broker step failed (no caller to answer): count and log it. */
  background(
    op: string,
    error: unknown,
    message: string,
    fields: Record<string, unknown> = {},
  ): void {
    this.metrics.brokerErrors.inc({ op });
    this.logger.warn({ ...fields, err: (error as Error).message }, message);
  }
}
