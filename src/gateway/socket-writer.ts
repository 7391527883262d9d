/**
 * The WebSocket transport of a connection (`connection-transport.ts`).
 * Writes to one connection's socket. Frames encoded once for many sockets
 * (`wire-frame.ts`) go straight to the raw socket under ws: a turn's first
 * at once, the rest corked until the end of the turn so that they leave in
 * one system call (`WriteCoalescer`); a socket adopted without its raw stream goes through
 * ws with the frame's text instead.
 */
import type { Duplex } from 'node:stream';
import type { RawData, WebSocket } from 'ws';
import type { ConnectionTransport, TransportEvents } from './connection-transport.js';
import { wsErrorCloseCode } from './socket-close.js';
import { encodeTextFrame } from './wire-frame.js';
import type { Corkable, WriteCoalescer } from './write-coalescer.js';

/**
 * Frames at least this large are written at once rather than held to the end
 * of the turn; and a turn that holds this much lets it go at once: it already
 * fills a system call. So what a socket holds beyond this is what the kernel
 * would not take, the measure of a lagging reader (`lag-queue.ts`), even when
 * a publisher loops without yielding the turn.
 */
export const COALESCE_BELOW_BYTES = 16 * 1024;

export class SocketWriter implements Corkable, ConnectionTransport {
  readonly kind = 'websocket';
  readonly heartbeats = true;
  readonly welcomeFields = null;
  /** The socket is corked. */
  private holding = false;
  /** The coalescer will call `release` at the end of this turn. */
  private scheduled = false;
  /** The coalescer's turn of this socket's last small frame written at once. */
  private wroteInTurn = 0;

  constructor(
    private readonly ws: WebSocket,
    /** The raw socket under `ws`; null when unknown (adopted sockets). */
    private readonly socket: Duplex | null,
    private readonly coalescer: WriteCoalescer,
  ) {}

  /** True when frames go through ws (no raw socket): callers pass the text then. */
  get needsText(): boolean {
    return this.socket === null;
  }

  /** Unsent bytes: what ws and the raw socket hold for the kernel. */
  get unsentBytes(): number {
    return this.ws.bufferedAmount;
  }

  /**
   * True when `whenDrained` can tell when the socket drains: frames may then
   * wait in a delta queue. An adopted socket (no raw stream) cannot say.
   */
  get canWaitForDrain(): boolean {
    return this.socket !== null;
  }

  /**
   * Calls `then` once when what the socket holds has gone to the kernel: on
   * its `drain` when a write is waiting for one, else on the next turn.
   */
  whenDrained(then: () => void): void {
    if (this.socket === null) return;
    if (this.socket.writableNeedDrain) this.socket.once('drain', then);
    else setImmediate(then);
  }

  /**
   * Writes a complete WebSocket frame (`encodeTextFrame`); `text` is its
   * payload, for ws. `written` is called once the frame (and so everything
   * before it) has gone to the kernel, unless the socket is gone.
   */
  writeFrame(frame: Buffer, text: string, written?: () => void): void {
    if (this.socket === null) {
      this.ws.send(text, written);
      return;
    }
    // Nothing after a close frame, ours or the peer's.
    if (this.socket.destroyed || this.ws.readyState !== this.ws.OPEN) return;
    // Coalescing pays for small frames (one syscall for many); a large frame
    // already fills a syscall, and holding it only adds latency. A light
    // turn's first small frame goes at once (`write-coalescer.ts` says why).
    if (frame.length < COALESCE_BELOW_BYTES && !this.holding) {
      const turn = this.coalescer.directTurn(this.wroteInTurn);
      if (turn !== null) this.wroteInTurn = turn;
      else this.hold();
    }
    this.socket.write(frame, written);
    if (this.holding && this.socket.writableLength >= COALESCE_BELOW_BYTES) {
      this.holding = false;
      this.socket.uncork();
    }
  }

  /**
   * The listeners are functions of no closure, shared by every socket (ws
   * calls them with the socket as `this`); the events object rides on the
   * socket. Five closures per connection were five allocations per
   * handshake and a few hundred bytes of every idle connection.
   */
  bind(events: TransportEvents): void {
    const ws = this.ws as EventfulSocket;
    ws[EVENTS] = events;
    ws.on('message', onMessage);
    ws.on('close', onClose);
    ws.on('ping', onPing);
    ws.on('pong', onPong);
    ws.on('error', onError);
  }

  /**
   * Framed here and written to the raw socket as ws's sender would (same
   * cork state, no hold): ws's `send` builds options, a header and a
   * two-part write for each frame, a tenth of the handshake's own CPU when
   * it sent the welcome.
   */
  sendText(text: string): void {
    if (this.socket === null) {
      this.ws.send(text);
      return;
    }
    if (this.socket.destroyed || this.ws.readyState !== this.ws.OPEN) return;
    this.socket.write(encodeTextFrame(text));
  }

  close(code: number, reason: string): void {
    try {
      this.ws.close(code, reason);
    } catch {
      this.ws.terminate();
    }
  }

  terminate(): void {
    this.ws.terminate();
  }

  /** Answers a protocol-level ping, held with the turn's other writes. */
  pong(data: Buffer): void {
    this.hold();
    this.ws.pong(data);
  }

  release(): void {
    this.scheduled = false;
    if (!this.holding) return;
    this.holding = false;
    this.socket?.uncork();
  }

  /** The socket was corked by the handshake: release it with this turn's writes. */
  adoptCork(): void {
    if (this.holding || !this.socket) return;
    this.holding = true;
    this.schedule();
  }

  /** Corks the socket to the end of the turn (`ConnectionTransport.holdTurn`). */
  holdTurn(): void {
    this.hold();
  }

  private hold(): void {
    if (this.holding || !this.socket) return;
    this.holding = true;
    this.socket.cork();
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.coalescer.hold(this);
  }
}

/** The socket's `TransportEvents`, set by `bind`. */
const EVENTS = Symbol('agentsocket.transportEvents');

type EventfulSocket = WebSocket & { [EVENTS]: TransportEvents };

function eventsOf(ws: WebSocket): TransportEvents {
  return (ws as EventfulSocket)[EVENTS];
}

function onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  eventsOf(this).message(data as Buffer, isBinary);
}

function onClose(this: WebSocket, code: number): void {
  eventsOf(this).closed(code);
}

function onPing(this: WebSocket, data: Buffer): void {
  eventsOf(this).ping(data);
}

function onPong(this: WebSocket): void {
  eventsOf(this).pong();
}

function onError(this: WebSocket, error: Error): void {
  // ws reports protocol violations (1002), oversize frames (1009) here and closes itself.
  // It stops reading at once, so the peer's answer never arrives and the socket's
  // `close` says 1006: the code ws sent goes with the error, so the close is counted under it.
  eventsOf(this).error(error.message, wsErrorCloseCode(error));
}
