/**
 * A connection's inbound side: every client frame, data or control, is a sign
 * of life and costs one token of the frame-rate budget (close 1008 past it);
 * frames before the welcome wait in a bounded queue; bad frames are answered
 * with an `error` frame within a budget of their own (close 1008 past it);
 * good ones are decoded at the edge and dispatched by type.
 */
import { GatewayError } from '../errors.js';
import { decodeClientFrame } from '../protocol/codec.js';
import { CloseCode } from '../protocol/close-codes.js';
import type { ErrorCode } from '../protocol/error-codes.js';
import type { Connection } from './connection.js';
import type { ConnectionHost } from './connection-host.js';
import type { TransportEvents } from './connection-transport.js';
import { TokenBucket } from './token-bucket.js';
import { encodeTextFrame } from './wire-frame.js';

/** Client frames accepted before the welcome; a client that sends more is closed with 1008. */
const MAX_EARLY_FRAMES = 32;
const PONG_TEXT = '{"type":"pong"}';
const PONG_FRAME = encodeTextFrame(PONG_TEXT);

export class ClientFrames implements TransportEvents {
  private readonly rate: TokenBucket;
  /** Bad frames allowed: `maxBadFrames` per `badFrameWindowMs`, as a bucket (created on the first). */
  private badFrameBudget: TokenBucket | null = null;
  /** Client frames that arrived before the welcome went out (bounded by MAX_EARLY_FRAMES). */
  private early: Array<[Buffer, boolean]> | null = null;

  constructor(
    private readonly connection: Connection,
    private readonly host: ConnectionHost,
    now: number,
  ) {
    const { limits } = host.options;
    this.rate = new TokenBucket(limits.framesPerSecond, limits.frameBurst, now);
  }

  onMessage(data: Buffer, isBinary: boolean): void {
    const now = Date.now();
    if (!this.admit(now)) return;
    if (this.connection.state === 'connecting') {
      this.early ??= [];
      if (this.early.length >= MAX_EARLY_FRAMES) {
        this.host.metrics.badFrames.inc({ reason: 'early' });
        this.connection.close(CloseCode.PolicyViolation, 'too many frames before the welcome');
        return;
      }
      this.early.push([data, isBinary]);
      return;
    }
    this.handle(data, isBinary, now);
  }

  /** A WebSocket-level ping: a client frame like any other (rate, liveness), then a pong. */
  onProtocolPing(data: Buffer): void {
    if (this.admit(Date.now())) this.connection.pong(data);
  }

  /** Unsolicited pongs cost work too: they count like any client frame. */
  onProtocolPong(): void {
    this.admit(Date.now());
  }

  /**
   * The welcome went out: the frames the client sent before it are answered
   * now, so the welcome stays the first frame (PROTOCOL.md section 2).
   */
  // What the transport reports (`TransportEvents`): this object is what it is
  // bound to, so a connection holds no closure per event kind.
  message(data: Buffer, isBinary: boolean): void {
    this.onMessage(data, isBinary);
  }

  ping(data: Buffer): void {
    this.onProtocolPing(data);
  }

  pong(): void {
    this.onProtocolPong();
  }

  closed(code: number): void {
    this.connection.transportClosed(code);
  }

  error(message: string, closeCode: number | null): void {
    this.connection.transportError(message, closeCode);
  }

  flushEarly(): void {
    const early = this.early;
    this.early = null;
    for (const [data, isBinary] of early ?? []) this.handle(data, isBinary, Date.now());
  }

  /** False when the frame must be dropped (the connection is going, or past its rate). */
  private admit(now: number): boolean {
    const { connection } = this;
    connection.lastSeenAt = now;
    if (connection.state !== 'open' && connection.state !== 'connecting') return false;
    if (this.rate.take(now)) return true;
    this.host.metrics.badFrames.inc({ reason: 'rate' });
    this.host.logger.warn(
      { connectionId: connection.id, userId: connection.userId },
      'frame rate exceeded',
    );
    connection.close(CloseCode.PolicyViolation, 'frame rate exceeded');
    return false;
  }

  private handle(data: Buffer, isBinary: boolean, now: number): void {
    const { connection } = this;
    if (connection.state !== 'open') return;
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
        connection.sendShared(PONG_FRAME, PONG_TEXT);
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
    const { connection } = this;
    this.host.metrics.acks.inc();
    if (seq > connection.sentSeq) {
      this.badFrame(
        now,
        'bad_ack',
        `ack for seq ${seq}, but only ${connection.sentSeq} was sent`,
        'bad_ack',
      );
      return;
    }
    if (seq > connection.ackedSeq) connection.acked(seq, now);
  }

  private async onRefresh(token: string): Promise<void> {
    const { connection, host } = this;
    const who = { connectionId: connection.id, userId: connection.userId };
    let user;
    try {
      user = await host.verifyRefresh(token);
    } catch (error) {
      if (error instanceof GatewayError && error.code === 'forbidden') {
        host.logger.warn(who, 'refresh by a blocked user: closing with 4403');
        connection.close(CloseCode.Forbidden);
        return;
      }
      host.metrics.badFrames.inc({ reason: 'refresh_invalid' });
      connection.sendFrame({
        type: 'error',
        code: 'unauthorized',
        message: 'refresh token refused',
      });
      return;
    }
    if (connection.state !== 'open') return;
    if (user.userId !== connection.userId) {
      host.logger.warn(who, 'refresh with a token of another user: closing with 4403');
      connection.close(CloseCode.Forbidden);
      return;
    }
    connection.expiresAt = user.expiresAt;
    connection.sendFrame({ type: 'refreshed', expiresAt: user.expiresAt });
  }

  private badFrame(
    now: number,
    reason: string,
    message: string,
    code: ErrorCode = 'bad_frame',
  ): void {
    const { connection, host } = this;
    host.metrics.badFrames.inc({ reason });
    const { maxBadFrames, badFrameWindowMs } = host.options.limits;
    // A bucket rather than a fixed window: no burst of twice the limit across
    // a window's edge.
    this.badFrameBudget ??= new TokenBucket(
      (maxBadFrames * 1000) / badFrameWindowMs,
      maxBadFrames,
      now,
    );
    if (!this.badFrameBudget.take(now)) {
      host.logger.warn(
        { connectionId: connection.id, userId: connection.userId, reason },
        'too many bad frames: closing with 1008',
      );
      connection.close(CloseCode.PolicyViolation, 'too many bad frames');
      return;
    }
    connection.sendFrame({ type: 'error', code, message });
  }
}
