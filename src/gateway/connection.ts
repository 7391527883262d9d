/**
 * One WebSocket of one user: its state, what it was sent and acked, its
 * inbound policing, and the seam between replay and live delivery.
 *
 * Delivery invariant kept here (docs/delivery.md): the event frames written
 * to a connection have strictly increasing seq with no gap, except where its
 * `welcome` says `gap: true`. `sentSeq` is the last seq written; a live event
 * is written only if it is exactly `sentSeq + 1`; older ones are duplicates
 * (dropped) and newer ones mean something was missed, so the connection
 * re-reads history from `sentSeq` (`resync`) before going on. While history is
 * being read, live events wait in a bounded buffer.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { VerifiedUser } from '../auth/authenticator.js';
import type {
  HistoryRead,
  ReadCursor,
  StreamEngine,
  StreamEvent,
} from '../broker/stream-engine.js';
import { GatewayError } from '../errors.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { decodeClientFrame } from '../protocol/codec.js';
import { CloseCode } from '../protocol/close-codes.js';
import { PROTOCOL_VERSION, type ServerFrame, type WelcomeFrame } from '../protocol/frames.js';
import { CriticalAcks } from './critical-acks.js';
import type { DeliveryReports } from './delivery-reports.js';
import type { EventFramer } from './event-framer.js';
import type { ConnectionSnapshot, ConnectionState } from './gateway-types.js';
import type { ResolvedOptions } from './options.js';
import type { RegisteredConnection } from './registry.js';
import { TokenBucket } from './token-bucket.js';
import { encodeTextFrame } from './wire-frame.js';
import type { Corkable, WriteCoalescer } from './write-coalescer.js';

/** What a connection works with on its node: injected, so the connection holds no globals. */
export interface ConnectionHost {
  readonly options: ResolvedOptions;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  readonly nodeId: string;
  readonly coalescer: WriteCoalescer;
  /** History reads (open, resync). */
  readonly streams: StreamEngine;
  /** Events as frames, shared by every connection of a fan-out. */
  readonly framer: EventFramer;
  /** Acks and delivery reports of awaited events. */
  readonly reports: DeliveryReports;
  /** Verifies a `refresh` token; rejects with a `forbidden` `GatewayError` when the user is blocked. */
  verifyRefresh(token: string): Promise<VerifiedUser>;
  /** The socket is gone. */
  closed(connection: Connection, code: number): void;
}

/** A live event that arrived while history was being read, with the epoch it belongs to. */
interface BufferedEvent {
  event: StreamEvent;
  epoch: string;
}

/** Client frames accepted before the welcome; a client that sends more is closed with 1008. */
const MAX_EARLY_FRAMES = 32;

/** Close reasons sent with server-initiated closes (short, fixed, nothing from the client). */
const CLOSE_REASONS: Record<number, string> = {
  [CloseCode.GoingAway]: 'server shutting down',
  [CloseCode.PolicyViolation]: 'policy violation',
  [CloseCode.TokenExpired]: 'token expired or revoked',
  [CloseCode.Forbidden]: 'forbidden',
  [CloseCode.Timeout]: 'timeout',
  [CloseCode.Replaced]: 'connection limit: replaced',
  [CloseCode.SlowConsumer]: 'slow consumer',
  [CloseCode.StreamReset]: 'stream reset: reconnect and resume',
};

export class Connection implements RegisteredConnection, Corkable {
  state: ConnectionState = 'connecting';
  epoch = '';
  /** Last seq written to the socket. */
  sentSeq = 0;
  /** Highest seq the client acked. */
  ackedSeq = 0;
  lastSeenAt: number;
  lastPingAt: number;
  expiresAt: number | null;

  private replaying = true;
  // Allocated on first use: most connections never need them, and an idle
  // connection's size is what a node's capacity is counted in.
  private buffer: BufferedEvent[] | null = null;
  /** Client frames that arrived before the welcome went out (bounded by MAX_EARLY_FRAMES). */
  private early: Array<[Buffer, boolean]> | null = null;
  /** A resync was asked for while the replay was running: do it when the replay is done. */
  private resyncRequested = false;
  private bufferOverflowed = false;
  /** Awaited critical events written and not yet acked (tiny: only publishes with `wait`). */
  private awaitedUnacked: StreamEvent[] | null = null;
  private criticalAcks: CriticalAcks | null = null;
  private readonly inbound: TokenBucket;
  /** Bad frames allowed: `maxBadFrames` per `badFrameWindowMs`, as a bucket (created on the first). */
  private badFrameBudget: TokenBucket | null = null;
  private closeCode: number | null = null;
  private terminateTimer: ReturnType<typeof setTimeout> | null = null;
  /** The socket is corked until the end of this turn (see WriteCoalescer). */
  private holding = false;

  constructor(
    readonly id: string,
    readonly userId: string,
    readonly ip: string,
    readonly userAgent: string | null,
    readonly connectedAt: number,
    user: VerifiedUser,
    private readonly ws: WebSocket,
    private readonly host: ConnectionHost,
    /** The raw socket under `ws`, corked to coalesce writes; null when unknown (adopted sockets). */
    private readonly socket: Duplex | null = null,
  ) {
    const { limits } = host.options;
    this.expiresAt = user.expiresAt;
    this.lastSeenAt = connectedAt;
    this.lastPingAt = connectedAt;
    this.inbound = new TokenBucket(limits.framesPerSecond, limits.frameBurst, connectedAt);
    ws.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    ws.on('close', (code) => this.onClose(code));
    ws.on('ping', (data) => this.onProtocolPing(data));
    // Unsolicited pongs cost work too: they count like any client frame.
    ws.on('pong', () => void this.admitInbound(Date.now()));
    ws.on('error', (error) => {
      // ws reports protocol violations (1002), oversize frames (1009) here and closes itself.
      // It stops reading at once, so the peer's answer never arrives and the socket's
      // `close` says 1006: remember the code ws sent, so the close is counted under it.
      this.closeCode ??= wsErrorCloseCode(error);
      host.logger.debug({ connectionId: id, err: error.message }, 'socket error');
    });
  }

  /**
   * Sends the welcome and the replay after `cursor`, then lets live events
   * through. The user's live events must already flow to `deliverLive` (the
   * broker subscription exists) so that nothing published during the read is
   * lost; those that arrive meanwhile wait in the buffer.
   */
  async open(cursor: ReadCursor): Promise<void> {
    const read = await this.readOrReset(cursor, 'open');
    if (!read || this.state !== 'connecting') return;
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
      replay: { from: read.from, count: read.events.length, gap: read.gap },
    };
    this.sendFrame(welcome);
    if (read.gap) this.host.metrics.gaps.inc();
    const first = read.events[0];
    // Everything before the replay's first event counts as sent (or lost, if `gap`).
    this.sentSeq = first ? first.seq - 1 : read.gap ? read.headSeq : read.from - 1;
    this.writeReplay(read.events);
    this.finishReplay();
    // Frames the client sent before its welcome are answered after it, so
    // the welcome stays the first frame (PROTOCOL.md section 2).
    const early = this.early;
    this.early = null;
    for (const [data, isBinary] of early ?? []) this.handleFrame(data, isBinary, Date.now());
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
    if (event.seq <= this.sentSeq) return false;
    if (event.seq !== this.sentSeq + 1) {
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
    const cursor: ReadCursor = { kind: 'position', seq: this.sentSeq, epoch: this.epoch };
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
    this.writeFrame(frame, text);
    this.checkBackpressure();
    return true;
  }

  /**
   * Writes a complete WebSocket frame (`encodeTextFrame`) straight to the
   * socket; a socket adopted without its raw stream goes through ws with the
   * payload text instead.
   */
  private writeFrame(frame: Buffer, text: string): void {
    if (this.socket === null) {
      this.ws.send(text);
      return;
    }
    // Nothing after a close frame, ours or the peer's.
    if (this.socket.destroyed || this.ws.readyState !== this.ws.OPEN) return;
    // Coalescing pays for small frames (one syscall for many); a large frame
    // already fills a syscall, and holding it only adds latency.
    if (frame.length < COALESCE_BELOW_BYTES) this.hold();
    this.socket.write(frame);
  }

  sendFrame(frame: ServerFrame): void {
    if (this.state !== 'open' && this.state !== 'connecting') return;
    this.ws.send(JSON.stringify(frame));
    this.checkBackpressure();
  }

  /** Server-initiated close; the socket is destroyed if the peer does not answer in time. */
  close(code: number, reason?: string): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.state = 'closing';
    this.closeCode = code;
    this.criticalAcks?.stop();
    this.buffer = null;
    try {
      this.ws.close(code, reason ?? CLOSE_REASONS[code] ?? '');
    } catch {
      this.ws.terminate();
    }
    this.terminateTimer = setTimeout(() => this.ws.terminate(), this.host.options.closeTimeoutMs);
    this.terminateTimer.unref?.();
  }

  /** Heartbeat and token lifetime, called by the supervised sweep. */
  sweep(now: number): void {
    if (this.state !== 'open') return;
    const { heartbeatMs, heartbeatTimeoutMs } = this.host.options;
    if (this.expiresAt !== null && now >= this.expiresAt) {
      this.close(CloseCode.TokenExpired);
    } else if (now - this.lastSeenAt >= heartbeatTimeoutMs) {
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
      bufferedBytes: this.ws.bufferedAmount,
      lastSeenAt: this.lastSeenAt,
      node: this.host.nodeId,
    };
  }

  private writeReplay(events: readonly StreamEvent[]): void {
    let written = 0;
    for (const event of events) {
      if (event.seq <= this.sentSeq) continue;
      if (this.state !== 'open') break;
      this.writeEvent(event, this.host.framer.wire(event));
      written++;
    }
    if (written > 0) {
      this.host.metrics.eventsReplayed.inc(written);
      this.host.metrics.eventsDelivered.inc(written);
    }
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

  release(): void {
    if (!this.holding) return;
    this.holding = false;
    this.socket?.uncork();
  }

  /** The socket was corked by the handshake: release it with this turn's writes. */
  adoptCork(): void {
    if (this.holding || !this.socket) return;
    this.holding = true;
    this.host.coalescer.hold(this);
  }

  private hold(): void {
    if (this.holding || !this.socket) return;
    this.holding = true;
    this.socket.cork();
    this.host.coalescer.hold(this);
  }

  private writeEvent(event: StreamEvent, frame: Buffer): void {
    this.writeFrame(frame, this.socket === null ? this.host.framer.text(event) : '');
    this.sentSeq = event.seq;
    // Past the bound of unacked critical events the connection is as good as
    // timed out (closed after this turn); the write itself still counts.
    if (event.critical && !this.trackCritical(event.seq)) this.ackTimedOut(event.seq);
    if (event.awaitedBy !== undefined) {
      this.host.reports.written(this, event);
      if (event.critical) (this.awaitedUnacked ??= []).push(event);
    }
    this.checkBackpressure();
  }

  /** Starts the ack deadline of a critical event just written; false past the bound. */
  private trackCritical(seq: number): boolean {
    this.criticalAcks ??= new CriticalAcks(
      this.host.options.ackTimeoutMs,
      this.host.options.limits.maxReplayBuffer,
      (timedOut) => this.ackTimedOut(timedOut),
    );
    return this.criticalAcks.sent(seq, Date.now());
  }

  private checkBackpressure(): void {
    if (this.ws.bufferedAmount > this.host.options.limits.maxBufferedBytes) {
      this.host.metrics.slowConsumerCloses.inc();
      this.host.logger.warn(
        { connectionId: this.id, userId: this.userId, bufferedBytes: this.ws.bufferedAmount },
        'slow consumer: closing with 4429',
      );
      this.close(CloseCode.SlowConsumer);
    }
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

  /** A WebSocket-level ping: a client frame like any other (rate, liveness), then a pong. */
  private onProtocolPing(data: Buffer): void {
    if (!this.admitInbound(Date.now())) return;
    this.hold();
    this.ws.pong(data);
    this.checkBackpressure();
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    const now = Date.now();
    if (!this.admitInbound(now)) return;
    if (this.state === 'connecting') {
      this.early ??= [];
      if (this.early.length >= MAX_EARLY_FRAMES) {
        this.host.metrics.badFrames.inc({ reason: 'early' });
        this.close(CloseCode.PolicyViolation, 'too many frames before the welcome');
        return;
      }
      this.early.push([data, isBinary]);
      return;
    }
    this.handleFrame(data, isBinary, now);
  }

  /**
   * Every client frame, data or control: a sign of life, and one token of the
   * frame-rate budget (close 1008 past it). False when it must be dropped.
   */
  private admitInbound(now: number): boolean {
    this.lastSeenAt = now;
    if (this.state !== 'open' && this.state !== 'connecting') return false;
    if (this.inbound.take(now)) return true;
    this.host.metrics.badFrames.inc({ reason: 'rate' });
    this.host.logger.warn({ connectionId: this.id, userId: this.userId }, 'frame rate exceeded');
    this.close(CloseCode.PolicyViolation, 'frame rate exceeded');
    return false;
  }

  private handleFrame(data: Buffer, isBinary: boolean, now: number): void {
    if (this.state !== 'open') return;
    if (isBinary) {
      this.badFrame(now, 'binary', 'binary frames are not part of the protocol');
      return;
    }
    const decoded = decodeClientFrame(data.toString('utf8'));
    if (!decoded.ok) {
      this.badFrame(now, 'malformed', decoded.message);
      return;
    }
    const frame = decoded.frame;
    switch (frame.type) {
      case 'ack':
        this.onAck(frame.seq, now);
        return;
      case 'ping':
        this.sendShared(PONG_FRAME, PONG_TEXT);
        return;
      case 'pong':
        return;
      case 'refresh':
        void this.onRefresh(frame.token);
        return;
      default: {
        const unreachable: never = frame;
        return unreachable;
      }
    }
  }

  private onAck(seq: number, now: number): void {
    this.host.metrics.acks.inc();
    if (seq > this.sentSeq) {
      this.badFrame(
        now,
        'bad_ack',
        `ack for seq ${seq}, but only ${this.sentSeq} was sent`,
        'bad_ack',
      );
      return;
    }
    if (seq <= this.ackedSeq) return;
    this.ackedSeq = seq;
    this.criticalAcks?.ackedUpTo(seq, now);
    let awaited: StreamEvent[] = [];
    if (this.awaitedUnacked !== null && this.awaitedUnacked.length > 0) {
      awaited = this.awaitedUnacked.filter((event) => event.seq <= seq);
      this.awaitedUnacked = this.awaitedUnacked.filter((event) => event.seq > seq);
    }
    this.host.reports.acked(this, seq, awaited);
  }

  private async onRefresh(token: string): Promise<void> {
    let user: VerifiedUser;
    try {
      user = await this.host.verifyRefresh(token);
    } catch (error) {
      if (error instanceof GatewayError && error.code === 'forbidden') {
        this.host.logger.warn(
          { connectionId: this.id, userId: this.userId },
          'refresh by a blocked user: closing with 4403',
        );
        this.close(CloseCode.Forbidden);
        return;
      }
      this.host.metrics.badFrames.inc({ reason: 'refresh_invalid' });
      this.sendFrame({ type: 'error', code: 'unauthorized', message: 'refresh token refused' });
      return;
    }
    if (this.state !== 'open') return;
    if (user.userId !== this.userId) {
      this.host.logger.warn(
        { connectionId: this.id, userId: this.userId },
        'refresh with a token of another user: closing with 4403',
      );
      this.close(CloseCode.Forbidden);
      return;
    }
    this.expiresAt = user.expiresAt;
    this.sendFrame({ type: 'refreshed', expiresAt: user.expiresAt });
  }

  private badFrame(now: number, reason: string, message: string, code = 'bad_frame'): void {
    this.host.metrics.badFrames.inc({ reason });
    const { maxBadFrames, badFrameWindowMs } = this.host.options.limits;
    // A bucket rather than a fixed window: no burst of twice the limit across
    // a window's edge.
    this.badFrameBudget ??= new TokenBucket(
      (maxBadFrames * 1000) / badFrameWindowMs,
      maxBadFrames,
      now,
    );
    if (!this.badFrameBudget.take(now)) {
      this.host.logger.warn(
        { connectionId: this.id, userId: this.userId, reason },
        'too many bad frames: closing with 1008',
      );
      this.close(CloseCode.PolicyViolation, 'too many bad frames');
      return;
    }
    this.sendFrame({ type: 'error', code, message });
  }

  private onClose(code: number): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.criticalAcks?.stop();
    if (this.terminateTimer) clearTimeout(this.terminateTimer);
    this.buffer = null;
    this.host.closed(this, this.closeCode ?? code);
  }
}

/**
 * The close code ws sends for a receiver error (ws keeps it on a private
 * symbol; its public `code` names the error): 1009 for an oversized frame or
 * message, 1008 for too many fragments, 1007 for invalid UTF-8, 1002 for every
 * other protocol violation. Null for socket errors (ECONNRESET…), which send none.
 */
function wsErrorCloseCode(error: Error): number | null {
  const code = (error as NodeJS.ErrnoException).code;
  if (typeof code !== 'string' || !code.startsWith('WS_ERR_')) return null;
  switch (code) {
    case 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH':
    case 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH':
      return CloseCode.MessageTooBig;
    case 'WS_ERR_TOO_MANY_BUFFERED_PARTS':
      return CloseCode.PolicyViolation;
    case 'WS_ERR_INVALID_UTF8':
      return 1007;
    default:
      return 1002;
  }
}

/** Frames at least this large are written at once rather than held to the end of the turn. */
const COALESCE_BELOW_BYTES = 16 * 1024;
const PING_TEXT = '{"type":"ping"}';
const PONG_TEXT = '{"type":"pong"}';
const PING_FRAME = encodeTextFrame(PING_TEXT);
const PONG_FRAME = encodeTextFrame(PONG_TEXT);
