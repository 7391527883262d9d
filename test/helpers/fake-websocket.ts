/**
 * A scripted WebSocket for client unit tests under fake timers: the test plays
 * the server (open, frames, close) and reads what the client sent. It stands in
 * for the transport only; the client logic under test is the real one.
 */
import type { WebSocketLike } from '../../src/client/websocket-like.js';
import type { CloseLike, MessageLike } from '../../src/client/websocket-like.js';

export class FakeWebSocket implements WebSocketLike {
  /** Every socket created, oldest first; tests clear it. */
  static readonly created: FakeWebSocket[] = [];
  readyState = 0;
  protocol = 'agentsocket.v1';
  readonly sent: Record<string, unknown>[] = [];
  closedWith: { code?: number; reason?: string } | null = null;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: MessageLike) => void) | null = null;
  onclose: ((event: CloseLike) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
    readonly init?: { headers?: Record<string, string> },
  ) {
    FakeWebSocket.created.push(this);
  }

  static last(): FakeWebSocket {
    const socket = FakeWebSocket.created.at(-1);
    if (!socket) throw new Error('no FakeWebSocket created');
    return socket;
  }

  send(data: string): void {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }

  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }

  /** The server side: the handshake completed. */
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  /** The server side: one frame. */
  receive(frame: Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  /** The server side: opens and sends a welcome. */
  welcome(overrides: Record<string, unknown> = {}): void {
    if (this.readyState === 0) this.open();
    this.receive({
      type: 'welcome',
      protocol: 1,
      connectionId: 'c1',
      userId: 'u1',
      epoch: 'e1',
      headSeq: 0,
      heartbeatMs: 10_000,
      replay: { from: 1, count: 0, gap: false },
      ...overrides,
    });
  }

  /** The server side: closes the connection. */
  serverClose(code: number, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

/** A JWT-shaped token (unsigned: the client only reads `exp`) expiring at `expMs`. */
export function tokenExpiringAt(expMs: number): string {
  const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'none' })}.${part({ sub: 'u1', exp: Math.floor(expMs / 1000) })}.sig`;
}
