/**
 * What one connection owes acks for: the ack deadlines of the critical events
 * it was handed (`CriticalAcks`) and the awaited events (publishes with
 * `wait`) whose delivery reports wait for an ack. Bounded: past
 * `limits.maxReplayBuffer` unacked critical events the connection is as good
 * as timed out; awaited critical events are few (only publishes that wait).
 */
import type { StreamEvent } from '../broker/stream-engine.js';
import type { Connection } from './connection.js';
import { CriticalAcks } from './critical-acks.js';
import type { DeliveryReports } from './delivery-reports.js';
import type { ResolvedOptions } from './options.js';

export class ConnectionAcks {
  /** Awaited critical events written and not yet acked. */
  private awaitedUnacked: StreamEvent[] | null = null;
  private critical: CriticalAcks | null = null;
  /**
   * Critical events waiting in the lag queue: their deadlines start when they
   * are written. Bounded by the queue (critical events never merge).
   */
  // Null until a critical event waits: an idle connection holds no array.
  private queued: number[] | null = null;

  constructor(
    private readonly connection: Connection,
    private readonly options: ResolvedOptions,
    private readonly reports: DeliveryReports,
    /** A critical event's deadline passed (or the bound did): judge the connection. */
    private readonly timedOut: (seq: number) => void,
  ) {}

  /**
   * An event handed on: `written` to the socket (its ack deadline starts when
   * critical), `queued` in the lag queue (its deadline starts at `flushed`),
   * or `covered` by a run snapshot the client was sent (no deadline: the
   * client never saw it as an event).
   */
  handed(event: StreamEvent, how: 'written' | 'queued' | 'covered'): void {
    if (event.critical && how === 'queued') (this.queued ??= []).push(event.seq);
    if (event.critical && how === 'written' && !this.track(event.seq)) this.timedOut(event.seq);
    if (event.awaitedBy === undefined) return;
    this.reports.written(this.connection, event);
    if (event.critical) (this.awaitedUnacked ??= []).push(event);
  }

  /** The client's cumulative ack moved to `seq`. */
  acked(seq: number, now: number): void {
    this.critical?.ackedUpTo(seq, now);
    let awaited: StreamEvent[] = [];
    if (this.awaitedUnacked !== null && this.awaitedUnacked.length > 0) {
      awaited = this.awaitedUnacked.filter((event) => event.seq <= seq);
      this.awaitedUnacked = this.awaitedUnacked.filter((event) => event.seq > seq);
    }
    this.reports.acked(this.connection, seq, awaited);
  }

  /** What waited in the lag queue was written: the deadlines of its critical events start. */
  flushed(): void {
    const queued = this.queued;
    if (queued === null) return;
    this.queued = null;
    for (const seq of queued) if (!this.track(seq)) this.timedOut(seq);
  }

  stop(): void {
    this.queued = null;
    this.critical?.stop();
  }

  /** Starts the ack deadline of a critical event; false past the bound. */
  private track(seq: number): boolean {
    this.critical ??= new CriticalAcks(
      this.options.ackTimeoutMs,
      this.options.limits.maxReplayBuffer,
      this.timedOut,
    );
    return this.critical.sent(seq, Date.now());
  }
}
