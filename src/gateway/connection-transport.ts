/**
 * The transport seam of a connection: `Connection` keeps every rule (seq,
 * replay, acks, lag, close codes) and writes through this interface. Two
 * implementations sit beside it: `SocketWriter` (a WebSocket, the protocol's
 * own transport) and `SseWriter` (a `GET /v1/sse` response, for networks
 * that block WebSockets; docs/protocol.md, "Server-Sent Events transport").
 */
import type { WelcomeFrame } from '../protocol/frames.js';

export type TransportKind = 'websocket' | 'sse';

/** What a transport reports to its connection. */
export interface TransportEvents {
  /** A client frame (WebSocket only; SSE acks arrive by `POST /v1/sse/ack`). */
  message(data: Buffer, isBinary: boolean): void;
  /** A WebSocket-level ping of the client. */
  ping(data: Buffer): void;
  /** A WebSocket-level pong of the client. */
  pong(): void;
  /** The transport is gone; `code` is what the peer or the network said. */
  closed(code: number): void;
  /** A transport error; `closeCode` is the code the transport closes with, when it says one. */
  error(message: string, closeCode: number | null): void;
}

export interface ConnectionTransport {
  readonly kind: TransportKind;
  /** True when `writeFrame` needs the frame's text (not only its WebSocket bytes). */
  readonly needsText: boolean;
  /** Bytes written but not yet taken by the kernel: the measure of a lagging reader. */
  readonly unsentBytes: number;
  /** True when `whenDrained` can tell when the transport drains. */
  readonly canWaitForDrain: boolean;
  /**
   * True when the peer answers heartbeats (WebSocket pings): silence past
   * `heartbeatTimeoutMs` then means it is gone. An SSE reader sends nothing;
   * its end is the TCP connection's, and a reader that stops reading meets
   * the slow-consumer limit.
   */
  readonly heartbeats: boolean;
  /** Fields this transport adds to the welcome (the SSE `ackKey`); null for none. */
  readonly welcomeFields: Pick<WelcomeFrame, 'ackKey'> | null;
  /** Binds the transport's events to its connection (once, at construction). */
  bind(events: TransportEvents): void;
  /** Calls `then` once when what the transport holds has gone to the kernel. */
  whenDrained(then: () => void): void;
  /**
   * Writes a frame encoded once for many connections: `frame` its WebSocket
   * bytes (`wire-frame.ts`), `text` its JSON (required when `needsText`).
   * `written` runs once it has gone to the kernel, unless the transport is gone.
   */
  writeFrame(frame: Buffer, text: string, written?: () => void): void;
  /** Writes a frame of this connection alone, as text. */
  sendText(text: string): void;
  /** Answers a WebSocket-level ping. */
  pong(data: Buffer): void;
  /** The socket was corked by the handshake: release it with this turn's writes. */
  adoptCork(): void;
  /**
   * Holds what this turn writes to the end of the turn: a welcome and the
   * replay behind it leave in one system call.
   */
  holdTurn(): void;
  /** Ends the transport, telling the peer `code` and `reason`; `closed` follows. */
  close(code: number, reason: string): void;
  /** Ends it at once (the peer did not answer the close in time). */
  terminate(): void;
}
