/**
 * A node's lifecycle: starting (the broker's `start`), serving, draining.
 * It answers "may this step go on?" for publishes and handshakes, counts the
 * publishes and broadcasts in flight so a drain waits for them, and gives
 * the readiness reasons that are its own.
 */
import type { Logger } from 'pino';
import type { BrokerHealth } from '../broker/broker.js';
import { GatewayError, RETRY_AFTER_SECONDS } from '../errors.js';
import { brokerUnavailable } from './broker-failures.js';

export class NodeLifecycle {
  private started = false;
  private startError: Error | null = null;
  private draining = false;
  /** Publishes and broadcasts under way; a drain waits for them. */
  private inflight = 0;
  private onIdle: (() => void) | null = null;

  constructor(private readonly logger: Logger) {}

  /** Follows the broker's start; the promise resolves either way (failures are kept). */
  track(starting: Promise<void>): Promise<void> {
    return starting.then(
      () => {
        this.started = true;
      },
      (error: Error) => {
        this.startError = error;
        this.logger.error({ err: error.message }, 'broker failed to start');
      },
    );
  }

  get isStarted(): boolean {
    return this.started;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Throws the 503 while the node drains. */
  assertAccepting(): void {
    if (this.draining) {
      throw new GatewayError('unavailable', 'server is draining', undefined, RETRY_AFTER_SECONDS);
    }
  }

  /**
   * For publishes and broadcasts. Fix (cluster branch): these used to check
   * `broker.health()` too, which is false while *any* engine link is down; a
   * cut of the Redis pub/sub links alone (a blip, `CLIENT KILL TYPE pubsub`)
   * then refused every publish with 503 on every node, although the command
   * link could store them and the followers catch up from history. The
   * stream contract (point 6) already makes a step it cannot do reject with
   * `BrokerUnavailableError` at once (503), so the broker decides.
   */
  assertStarted(): void {
    if (this.startError) {
      throw new GatewayError(
        'unavailable',
        'broker failed to start',
        undefined,
        RETRY_AFTER_SECONDS,
      );
    }
  }

  /** For handshakes: a node that cannot follow its users' streams takes no new connections. */
  assertUsable(health: BrokerHealth): void {
    this.assertStarted();
    if (!health.healthy) throw brokerUnavailable();
  }

  /** A publish or broadcast starts. */
  begin(): void {
    this.inflight++;
  }

  /** One pending publish or broadcast is done; the drain may go on when none are left. */
  settle(): void {
    this.inflight--;
    if (this.inflight === 0) this.onIdle?.();
  }

  /** Starts draining; false when it had already started. */
  beginDrain(): boolean {
    if (this.draining) return false;
    this.draining = true;
    return true;
  }

  /** Resolves when no publish or broadcast is in flight. */
  async idle(): Promise<void> {
    if (this.inflight === 0) return;
    await new Promise<void>((resolve) => (this.onIdle = resolve));
    this.onIdle = null;
  }

  /** This lifecycle's reasons for not being ready. */
  reasons(): string[] {
    const reasons: string[] = [];
    if (this.draining) reasons.push('draining');
    if (this.startError) reasons.push(`broker failed to start: ${this.startError.message}`);
    return reasons;
  }
}
