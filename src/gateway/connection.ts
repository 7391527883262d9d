/**
 * One connection of one user: its state, what it was sent and acked, and the
 * replay/live seam (inbound: `ClientFrames`; writes: a `ConnectionTransport`,
 * a WebSocket or a Server-Sent Events response).
 *
 * Delivery invariant kept here (docs/delivery.md): the event frames written
 * to a connection have strictly increasing seq with no gap, except where its
 * `welcome` says `gap: true`. `sentSeq` is the last seq written; a live event
 * is written only if it is exactly `sentSeq + 1`; older ones are duplicates
 * (dropped) and newer ones mean something was missed, so the connection
 * re-reads history from `sentSeq` (`resync`) before going on. While history is
 * being read, live events wait in a bounded buffer.
 *
 * Coalescing (protocol 1.1): a replay's deltas are always merged; live, a
 * connection that falls behind queues its frames, merged (`LagQueue`).
 */
import type { VerifiedUser } from '../auth/authenticator.js';
import type { HistoryRead, ReadCursor, StreamEvent } from '../broker/stream-engine.js';
import { CloseCode } from '../protocol/close-codes.js';
import { PROTOCOL_VERSION, type ServerFrame, type WelcomeFrame } from '../protocol/frames.js';
import type { PendingItem } from '../runs/delta-coalescer.js';
import { ClientFrames } from './client-frames.js';
import { ConnectionAcks } from './connection-acks.js';
import type { ConnectionTransport } from './connection-transport.js';
import { isMergeableDelta } from './event-framer.js';
import type { ConnectionHost } from './connection-host.js';
import { LagQueue } from './lag-queue.js';
import { planOpening, type RunCoverage } from './run-snapshots.js';
import type { ConnectionSnapshot, ConnectionState } from './gateway-types.js';
import type { RegisteredConnection } from './registry.js';
import { encodeTextFrame } from './wire-frame.js';
import { CLOSE_REASONS } from './socket-close.js';

/** A live event that arrived while history was being read, with the epoch it belongs to. */
interface BufferedEvent {
  event: StreamEvent;
  epoch: string;
}

export class Connection implements RegisteredConnection {
  state: ConnectionState = 'connecting';
  epoch = '';
  /** Last seq written to the socket (a merged frame's `seq`): what the client may ack. */
  sentSeq = 0;
  /** Highest seq the client acked. */
  ackedSeq = 0;
  lastSeenAt: number;
  lastPingAt: number;
  expiresAt: number | null;

  private replaying = true;
  /**
   * Last seq handed on: written, waiting in `lag`, or covered by a run
   * snapshot. Equal to `sentSeq` while nothing waits. The live path's
   * continuity and the resync cursor go by it.
   */
  private handedSeq = 0;
  /** Frames waiting for the socket to drain when the connection lags. */
  private readonly lag: LagQueue;
  /** What the run snapshots sent on open cover; null once past it (or none were sent). */
  private coverage: RunCoverage | null = null;
  // Allocated on first use: most connections never need them, and an idle
  // connection's size is what a node's capacity is counted in.
  private buffer: BufferedEvent[] | null = null;
  /** A resync was asked for while the replay was running: do it when the replay is done. */
  private resyncRequested = false;
  private bufferOverflowed = false;
  private readonly acks: ConnectionAcks;
  private readonly inbound: ClientFrames;
  private closeCode: number | null = null;
  private terminateTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    readonly id: string,
    readonly userId: string,
    readonly ip: string,
    readonly userAgent: string | null,
    readonly connectedAt: number,
    user: VerifiedUser,
    /** The WebSocket (`SocketWriter`) or SSE response (`SseWriter`) it writes to. */
    readonly writer: ConnectionTransport,
    private readonly host: ConnectionHost,
  ) {
    this.acks = new ConnectionAcks(this, host.options, host.reports, (seq) =>
      this.ackTimedOut(seq),
    );
    this.lag = new LagQueue(this.writer, host.options.limits, host.metrics, () => {
      this.sentSeq = this.handedSeq;
      this.acks.flushed();
      this.checkBackpressure();
    });
    this.expiresAt = user.expiresAt;
    this.lastSeenAt = connectedAt;
    this.lastPingAt = connectedAt;
    const inbound = (this.inbound = new ClientFrames(this, host, connectedAt));
    writer.bind(inbound);
  }

  /**
   * Sends the welcome and the replay after `cursor`, then lets live events
   * through. The user's live events must already flow to `deliverLive` (the
   * broker subscription exists) so that nothing published during the read is
   * lost; those that arrive meanwhile wait in the buffer. With `snapshots`
   * (protocol 1.1), runs go first as `run_snapshot` frames (`run-snapshots.ts`).
   */
  async open(cursor: ReadCursor, snapshots = false): Promise<void> {
    const read = await this.readOrReset(cursor, 'open');
    if (!read || this.state !== 'connecting') return;
    const plan = await planOpening(this.host, this.userId, cursor, read, snapshots);
    if (this.state !== 'connecting') return;
    this.coverage = plan.coverage;
    this.epoch = read.epoch;
    this.state = 'open';
    const welcome: WelcomeFrame = {
      type: 'welcome',
      protocol: PROTOCOL_VERSION,
      connectionId: this.id,
      userId: this.userId,
      epoch: read.epoch,
      headSeq: read.headSeq,
      heartbeatMs: this.host.options.heartbeatMs,
      replay: plan.replay,
    };
    // Added after `replay` (the same order as a spread), without a spread's object copy.
    if (this.writer.welcomeFields) Object.assign(welcome, this.writer.welcomeFields);
    // With the frames behind it in one system call (a Redis read ends after the handshake's cork).
    if (read.events.length > 0 || plan.frames.length > 0) this.writer.holdTurn();
    this.sendFrame(welcome);
    for (const frame of plan.frames) this.sendFrame(frame);
    if (plan.replay.gap) this.host.metrics.gaps.inc();
    const first = read.events[0];
    // Everything before the replay's first event counts as sent (or lost, if `gap`).
    this.sentSeq = first ? first.seq - 1 : read.gap ? read.headSeq : read.from - 1;
    this.handedSeq = this.sentSeq;
    this.writeReplay(read.events);
    this.finishReplay();
    this.inbound.flushEarly();
  }

  /** A live event of this connection's user, of stream `epoch`, in seq order from the broker. */
  deliverLive(event: StreamEvent, frame: Buffer, epoch: string): boolean {
    if (this.state === 'connecting' || this.replaying) {
      if (this.state === 'closing' || this.state === 'closed') return false;
      this.buffer ??= [];
      if (this.buffer.length < this.host.options.limits.maxReplayBuffer) {
        this.buffer.push({ event, epoch });
      } else this.bufferOverflowed = true;
      return false;
    }
    if (this.state !== 'open') return false;
    if (epoch !== this.epoch) {
      // Another stream: the re-read reports the gap and closes with 1012.
      void this.resync();
      return false;
    }
    if (event.seq <= this.handedSeq) return false;
    if (event.seq !== this.handedSeq + 1) {
      void this.resync();
      // The event itself will come with the re-read.
      return false;
    }
    this.writeEvent(event, frame);
    return true;
  }

  /** Re-reads history after `sentSeq` (a gap in the live path, a broker resync). */
  async resync(): Promise<void> {
    if (this.state === 'connecting' || (this.state === 'open' && this.replaying)) {
      // The read under way may predate what the broker saw: read again after it.
      this.resyncRequested = true;
      return;
    }
    if (this.state !== 'open') return;
    this.replaying = true;
    const cursor: ReadCursor = { kind: 'position', seq: this.handedSeq, epoch: this.epoch };
    const read = await this.readOrReset(cursor, 'resync');
    if (!read || this.state !== 'open') return;
    if (read.gap) {
      // The stream moved on without us (new epoch, history trimmed): only a
      // new welcome can say so, so the client reconnects and resumes.
      this.host.metrics.gaps.inc();
      this.close(CloseCode.StreamReset);
      return;
    }
    this.writeReplay(read.events);
    this.finishReplay();
  }

  /** Reads history; when the broker fails, closes with 1012 so the client resumes elsewhere. */
  private async readOrReset(cursor: ReadCursor, step: string): Promise<HistoryRead | null> {
    try {
      return await this.host.streams.readHistory(this.userId, cursor);
    } catch (error) {
      this.host.logger.error(
        { connectionId: this.id, userId: this.userId, step, err: (error as Error).message },
        'history read failed',
      );
      this.close(CloseCode.StreamReset);
      return null;
    }
  }

  /** Writes a frame encoded once for many connections (broadcasts, pings); `text` is its payload. */
  sendShared(frame: Buffer, text: string): boolean {
    if (this.state !== 'open') return false;
    if (this.lag.lagging) this.enqueue({ kind: 'frame', frame: text, bytes: frame.length });
    else this.writer.writeFrame(frame, text);
    this.checkBackpressure();
    return true;
  }

  sendFrame(frame: ServerFrame): void {
    if (this.state !== 'open' && this.state !== 'connecting') return;
    const text = JSON.stringify(frame);
    if (this.lag.lagging) this.enqueue({ kind: 'frame', frame: text, bytes: text.length });
    else this.writer.sendText(text);
    this.checkBackpressure();
  }

  /** Server-initiated close; the socket is destroyed if the peer does not answer in time. */
  close(code: number, reason?: string): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.state = 'closing';
    this.closeCode = code;
    this.acks.stop();
    this.buffer = null;
    this.lag.clear();
    this.writer.close(code, reason ?? CLOSE_REASONS[code] ?? '');
    const terminate = (): void => this.writer.terminate();
    this.terminateTimer = setTimeout(terminate, this.host.options.closeTimeoutMs);
    this.terminateTimer.unref?.();
  }

  /** Heartbeat and token lifetime, called by the supervised sweep. */
  sweep(now: number): void {
    if (this.state !== 'open') return;
    const { heartbeatMs, heartbeatTimeoutMs } = this.host.options;
    if (this.expiresAt !== null && now >= this.expiresAt) {
      this.close(CloseCode.TokenExpired);
    } else if (this.writer.heartbeats && now - this.lastSeenAt >= heartbeatTimeoutMs) {
      // Decide after the poll phase: a pong already waiting in the kernel
      // (after an event-loop stall) is read first and counts.
      setImmediate(() => {
        if (this.state !== 'open' || Date.now() - this.lastSeenAt < heartbeatTimeoutMs) return;
        this.host.logger.info({ connectionId: this.id, userId: this.userId }, 'heartbeat timeout');
        this.close(CloseCode.Timeout);
      });
    } else if (now - this.lastPingAt >= heartbeatMs) {
      this.lastPingAt = now;
      this.sendShared(PING_FRAME, PING_TEXT);
    }
  }

  snapshot(): ConnectionSnapshot {
    return {
      connectionId: this.id,
      userId: this.userId,
      state: this.state,
      connectedAt: this.connectedAt,
      remoteAddress: this.ip,
      userAgent: this.userAgent,
      ackedSeq: this.ackedSeq,
      sentSeq: this.sentSeq,
      bufferedBytes: this.writer.unsentBytes,
      transport: this.writer.kind,
      lastSeenAt: this.lastSeenAt,
      node: this.host.nodeId,
    };
  }

  /**
   * Writes a replay, its deltas merged. A lagging connection queues it
   * instead, where the queue merges it the same way.
   */
  private writeReplay(events: readonly StreamEvent[]): void {
    // No delta to merge: each event's shared frame goes out as is, unframed again.
    if (!this.lag.lagging && !events.some(isMergeableDelta)) {
      this.writeReplayAsIs(events);
      return;
    }
    const items: PendingItem[] = [];
    const queued = this.lag.lagging;
    for (const event of events) {
      if (event.seq <= this.handedSeq) continue;
      if (this.state !== 'open') break;
      if (this.covered(event)) {
        this.handedCovered(event);
        continue;
      }
      items.push(this.host.framer.item(event));
      this.handed(event, queued);
    }
    if (items.length > 0) {
      this.host.stats.countReplayed(items.length);
      if (!this.lag.writeAll(items)) {
        this.closeSlowConsumer();
        return;
      }
    }
    if (!queued) this.sentSeq = this.handedSeq;
    this.checkBackpressure();
  }

  private writeReplayAsIs(events: readonly StreamEvent[]): void {
    let written = 0;
    for (const event of events) {
      if (event.seq <= this.handedSeq) continue;
      if (this.state !== 'open') break;
      if (!this.covered(event)) written++;
      this.writeEvent(event, this.host.framer.wire(event));
    }
    if (written > 0) this.host.stats.countReplayed(written);
  }

  /** Replay done: flush what arrived live meanwhile, through the same seq rules. */
  private finishReplay(): void {
    const buffered = this.buffer ?? [];
    const again = this.bufferOverflowed || this.resyncRequested;
    this.buffer = null;
    this.bufferOverflowed = false;
    this.resyncRequested = false;
    this.replaying = false;
    let delivered = 0;
    for (const { event, epoch } of buffered) {
      if (this.deliverLive(event, this.host.framer.wire(event), epoch)) delivered++;
      if (this.replaying) return; // a gap started another resync; it takes over
    }
    if (delivered > 0) this.host.metrics.eventsDelivered.inc(delivered);
    if (again) void this.resync();
  }

  /** The socket was corked by the handshake: release it with this turn's writes. */
  adoptCork(): void {
    this.writer.adoptCork();
  }

  private writeEvent(event: StreamEvent, frame: Buffer): void {
    if (this.covered(event)) {
      this.handedCovered(event);
      if (!this.lag.lagging) this.sentSeq = event.seq;
      return;
    }
    const queued = this.lag.lagging;
    if (queued) {
      if (!this.enqueue(this.host.framer.item(event))) return;
    } else {
      this.writer.writeFrame(frame, this.writer.needsText ? this.host.framer.text(event) : '');
      this.sentSeq = event.seq;
    }
    this.handed(event, queued);
    this.checkBackpressure();
  }

  /** An event handed on (written or queued): seq, ack deadline, delivery report. */
  private handed(event: StreamEvent, queued: boolean): void {
    this.handedSeq = event.seq;
    this.acks.handed(event, queued ? 'queued' : 'written');
  }

  /** True when the event is in a run snapshot this connection was sent. */
  private covered(event: StreamEvent): boolean {
    return this.coverage?.covers(event, this.host.framer) === true;
  }

  /** An event the client has in a run snapshot: sent as far as seq and acks go. */
  private handedCovered(event: StreamEvent): void {
    this.handedSeq = event.seq;
    this.acks.handed(event, 'covered');
  }

  /** Queues a frame of a lagging connection; false (and close 4429) past the queue's bound. */
  private enqueue(item: PendingItem): boolean {
    if (this.lag.push(item)) return true;
    this.closeSlowConsumer();
    return false;
  }

  private checkBackpressure(): void {
    const unsent = this.writer.unsentBytes + this.lag.bytes;
    if (unsent > this.host.options.limits.maxBufferedBytes) this.closeSlowConsumer();
  }

  private closeSlowConsumer(): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.host.metrics.slowConsumerCloses.inc();
    this.host.logger.warn(
      {
        connectionId: this.id,
        userId: this.userId,
        bufferedBytes: this.writer.unsentBytes,
        queuedBytes: this.lag.bytes,
      },
      'slow consumer: closing with 4429',
    );
    this.close(CloseCode.SlowConsumer);
  }

  private ackTimedOut(seq: number): void {
    // Decide after the poll phase, so an ack already received by the kernel
    // is read before the connection is judged (see the heartbeat sweep).
    setImmediate(() => this.closeIfStillUnacked(seq));
  }

  private closeIfStillUnacked(seq: number): void {
    if (this.state !== 'open' || this.ackedSeq >= seq) return;
    this.host.metrics.ackTimeouts.inc();
    this.host.logger.info(
      { connectionId: this.id, userId: this.userId, seq },
      'critical event not acked in time: closing with 4408',
    );
    this.close(CloseCode.Timeout);
  }

  /** Answers a protocol-level ping (admitted by `ClientFrames`). */
  pong(data: Buffer): void {
    this.writer.pong(data);
    this.checkBackpressure();
  }

  /** A client frame that came another way than the transport (an SSE ack by POST). */
  receive(text: string): void {
    this.inbound.onMessage(Buffer.from(text), false);
  }

  /** The client's cumulative ack moved to `seq` (checked by `ClientFrames`). */
  acked(seq: number, now: number): void {
    this.ackedSeq = seq;
    this.acks.acked(seq, now);
  }

  /** The transport failed; `closeCode` is the code it closes with, when it says one. */
  transportError(message: string, closeCode: number | null): void {
    this.closeCode ??= closeCode;
    this.host.logger.debug({ connectionId: this.id, err: message }, 'socket error');
  }

  /** The transport is gone (`ClientFrames` hands its `closed` on). */
  transportClosed(code: number): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.acks.stop();
    if (this.terminateTimer) clearTimeout(this.terminateTimer);
    this.buffer = null;
    this.lag.clear();
    this.host.closed(this, this.closeCode ?? code);
  }
}

const PING_TEXT = '{"type":"ping"}';
const PING_FRAME = encodeTextFrame(PING_TEXT);
