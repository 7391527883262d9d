/**
 * The Server-Sent Events transport of a connection (`connection-transport.ts`):
 * a `GET /v1/sse` response. Every frame the WebSocket would carry goes out as
 * `data: <the same JSON>\n\n` (LF only), event frames with `id: <epoch>:<seq>`;
 * the heartbeat's `ping` frame becomes a `: keep-alive` comment; a close is a
 * last `{"type":"close","code","reason"}` frame, then the end of the response.
 *
 * What the response holds unsent (`writableLength`: its buffer and the
 * socket's) is the lag measure, as `bufferedAmount` is for a WebSocket. A
 * light turn's first write goes at once; the rest are corked and leave
 * together (`WriteCoalescer`).
 */
import type { ServerResponse } from 'node:http';
import { encodeSseFrame, formatEventId, SSE_KEEP_ALIVE_COMMENT } from '../protocol/sse.js';
import type { SseCloseFrame } from '../protocol/sse.js';
import { CloseCode } from '../protocol/close-codes.js';
import type { ConnectionTransport, TransportEvents } from './connection-transport.js';
import type { Corkable, WriteCoalescer } from './write-coalescer.js';

/** The heartbeat frame (`connection.ts`), written as a comment here. */
const PING_TEXT = '{"type":"ping"}';
/** An event frame's seq, at the front of its text (`protocol/event-frame.ts`, `merged-frame.ts`). */
const EVENT_SEQ_AT_FRONT = /^\{"type":"event","seq":(\d+)/;
const WELCOME_AT_FRONT = '{"type":"welcome"';

export class SseWriter implements ConnectionTransport, Corkable {
  readonly kind = 'sse';
  readonly needsText = true;
  readonly canWaitForDrain = true;
  readonly heartbeats = false;
  readonly welcomeFields: { ackKey: string };
  /** The stream's epoch, read from the welcome: the `id:` of every event frame. */
  private epoch = '';
  private ended = false;
  private holding = false;
  /** The coalescer's turn of this response's last write made at once. */
  private wroteInTurn = 0;

  constructor(
    private readonly res: ServerResponse,
    ackKey: string,
    private readonly coalescer: WriteCoalescer,
  ) {
    this.welcomeFields = { ackKey };
  }

  get unsentBytes(): number {
    return this.res.writableLength;
  }

  bind(events: TransportEvents): void {
    // A response that ends without our close (the client left, the network
    // dropped) reports 1006, as a WebSocket without a close frame does.
    this.res.once('close', () => events.closed(CloseCode.AbnormalClosure));
    this.res.on('error', (error) => events.error(error.message, null));
  }

  whenDrained(then: () => void): void {
    if (this.res.writableNeedDrain) this.res.once('drain', then);
    else setImmediate(then);
  }

  writeFrame(_frame: Buffer, text: string, written?: () => void): void {
    if (this.ended || this.res.destroyed) return;
    if (text === PING_TEXT) {
      this.write(SSE_KEEP_ALIVE_COMMENT, written);
      return;
    }
    const seq = EVENT_SEQ_AT_FRONT.exec(text)?.[1];
    if (seq !== undefined) {
      this.write(encodeSseFrame(text, formatEventId(this.epoch, Number(seq))), written);
      return;
    }
    if (text.startsWith(WELCOME_AT_FRONT)) {
      this.epoch = (JSON.parse(text) as { epoch: string }).epoch;
    }
    this.write(encodeSseFrame(text), written);
  }

  sendText(text: string): void {
    this.writeFrame(EMPTY, text);
  }

  /** No WebSocket-level pings on this transport. */
  pong(): void {}

  /** Nothing was corked before the stream began. */
  adoptCork(): void {}

  holdTurn(): void {
    if (this.ended || this.holding) return;
    this.holding = true;
    this.res.cork();
    this.coalescer.hold(this);
  }

  close(code: number, reason: string): void {
    if (this.ended) return;
    const frame: SseCloseFrame = { type: 'close', code, reason };
    this.write(encodeSseFrame(JSON.stringify(frame)));
    this.ended = true;
    this.release();
    this.res.end();
  }

  terminate(): void {
    this.ended = true;
    this.res.destroy();
  }

  release(): void {
    if (!this.holding) return;
    this.holding = false;
    this.res.uncork();
  }

  private write(chunk: string, written?: () => void): void {
    // A light turn's first write goes at once, the rest leave together (`write-coalescer.ts`).
    if (!this.holding) {
      const turn = this.coalescer.directTurn(this.wroteInTurn);
      if (turn !== null) this.wroteInTurn = turn;
      else this.holdTurn();
    }
    this.res.write(chunk, written);
  }
}

const EMPTY = Buffer.alloc(0);
