/**
 * The Server-Sent Events transport of the SDK (docs/protocol.md,
 * "Server-Sent Events transport"), shaped as a `WebSocketLike` so the
 * connection engine runs unchanged on it: same welcome, seq tracking,
 * dedupe, acks, close-code table and reconnects.
 *
 * - Opening: a ticket for the token (`POST /v1/tickets`), then
 *   `GET /v1/sse?ticket=` with the cursor as `lastSeq` + `epoch` (a plain GET
 *   needs no CORS preflight) through `fetch` with a streaming body reader:
 *   `EventSource` cannot set headers and would reconnect on its own with a
 *   spent ticket. A refusal is a close with 1006, as a refused WebSocket
 *   handshake is in a browser.
 * - Reading: LF-framed events; each `data:` line is a server frame handed on
 *   as a message; the gateway's last `{"type":"close"}` frame becomes the
 *   close code; a `: keep-alive` comment is handed on as a `ping` frame, so
 *   the engine's silence watchdog sees it (its `pong` is not sent anywhere).
 * - Writing: only acks travel, by `POST /v1/sse/ack` with the welcome's
 *   `ackKey`, one request at a time (a later ack supersedes a waiting one).
 *   `refresh` is dropped: a stream lives as long as its ticket's token and
 *   ends with 4401, after which the engine reconnects with a fresh token.
 */
import { CloseCode } from '../protocol/close-codes.js';
import type { SseCloseFrame } from '../protocol/sse.js';
import type { StreamCursor } from './seq-tracker.js';
import type { CloseLike, MessageLike, WebSocketLike } from './websocket-like.js';

/** What of `fetch` the SSE transport uses: browsers and Node 20 have it. */
export type StreamFetch = (
  url: string,
  init: {
    method: string;
    headers: Record<string, string>;
    body?: string;
    signal: AbortSignal;
  },
) => Promise<{
  status: number;
  body: ReadableStream<Uint8Array> | null;
  text(): Promise<string>;
}>;

export interface SseSocketOptions {
  /** The HTTP API's base URL (`httpUrl`). */
  base: string;
  token: string;
  cursor: StreamCursor | null;
  snapshots: boolean;
  fetch: StreamFetch;
}

const PING_TEXT = '{"type":"ping"}';
const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 3;

export class SseSocket implements WebSocketLike {
  readyState = CONNECTING;
  readonly protocol = '';
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: MessageLike) => void) | null = null;
  onclose: ((event: CloseLike) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  readonly #options: SseSocketOptions;
  readonly #abort = new AbortController();
  #ackTarget: { connectionId: string; ackKey: string } | null = null;
  #closeFrame: SseCloseFrame | null = null;
  #acking = false;
  #nextAck: number | null = null;

  constructor(options: SseSocketOptions) {
    this.#options = options;
    void this.#run();
  }

  send(data: string): void {
    if (this.readyState !== OPEN) throw new Error('the SSE stream is not open');
    const frame = JSON.parse(data) as { type?: unknown; seq?: unknown };
    if (frame.type !== 'ack' || typeof frame.seq !== 'number') return;
    this.#nextAck = Math.max(this.#nextAck ?? 0, frame.seq);
    if (!this.#acking) void this.#flushAcks();
  }

  close(): void {
    this.readyState = CLOSED;
    this.#abort.abort();
  }

  async #run(): Promise<void> {
    const { base, cursor, snapshots } = this.#options;
    try {
      const ticket = await this.#ticket();
      const url = new URL(`${base}/v1/sse`);
      url.searchParams.set('ticket', ticket);
      if (snapshots) url.searchParams.set('snapshots', '1');
      if (cursor) {
        url.searchParams.set('lastSeq', String(cursor.lastSeq));
        url.searchParams.set('epoch', cursor.epoch);
      }
      const res = await this.#options.fetch(url.toString(), {
        method: 'GET',
        headers: { Accept: 'text/event-stream' },
        signal: this.#abort.signal,
      });
      if (res.status !== 200 || res.body === null) {
        this.#fail(`GET /v1/sse answered ${res.status}${await errorCodeOf(res)}`);
        return;
      }
      if (this.readyState === CLOSED) return;
      this.readyState = OPEN;
      this.onopen?.({});
      await this.#read(res.body);
      const close = this.#closeFrame;
      this.#end(close?.code ?? CloseCode.AbnormalClosure, close?.reason ?? 'the stream ended');
    } catch (error) {
      this.#fail((error as Error).message ?? 'the SSE stream failed');
    }
  }

  async #ticket(): Promise<string> {
    const res = await this.#options.fetch(`${this.#options.base}/v1/tickets`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${this.#options.token}` },
      signal: this.#abort.signal,
    });
    if (res.status !== 201) {
      throw new Error(`POST /v1/tickets answered ${res.status}${await errorCodeOf(res)}`);
    }
    const { ticket } = JSON.parse(await res.text()) as { ticket?: unknown };
    if (typeof ticket !== 'string') throw new Error('POST /v1/tickets gave no ticket');
    return ticket;
  }

  async #read(body: ReadableStream<Uint8Array>): Promise<void> {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let pending = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done || this.readyState === CLOSED) return;
      pending += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = pending.indexOf('\n\n')) !== -1) {
        const block = pending.slice(0, end);
        pending = pending.slice(end + 2);
        this.#onBlock(block);
        if (this.readyState === CLOSED) return;
      }
    }
  }

  /** One SSE event: its `data:` line is a frame; a comment alone is the keep-alive. */
  #onBlock(block: string): void {
    let data: string | null = null;
    for (const line of block.split('\n')) {
      if (line.startsWith('data: ')) data = line.slice(6);
    }
    if (data === null) {
      if (block.startsWith(':')) this.onmessage?.({ data: PING_TEXT });
      return;
    }
    if (data.startsWith('{"type":"close"')) {
      this.#closeFrame = JSON.parse(data) as SseCloseFrame;
      return;
    }
    if (data.startsWith('{"type":"welcome"')) {
      const welcome = JSON.parse(data) as { connectionId?: unknown; ackKey?: unknown };
      if (typeof welcome.connectionId === 'string' && typeof welcome.ackKey === 'string') {
        this.#ackTarget = { connectionId: welcome.connectionId, ackKey: welcome.ackKey };
      }
    }
    this.onmessage?.({ data });
  }

  async #flushAcks(): Promise<void> {
    this.#acking = true;
    try {
      while (this.#nextAck !== null && this.readyState === OPEN && this.#ackTarget) {
        const seq = this.#nextAck;
        this.#nextAck = null;
        const res = await this.#options.fetch(`${this.#options.base}/v1/sse/ack`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ ...this.#ackTarget, seq }),
          signal: this.#abort.signal,
        });
        if (res.status !== 200) {
          // 404: the node behind the load balancer does not hold this stream
          // (docs/protocol.md, "Several nodes"). The stream goes on; a critical
          // event's deadline ends it, and the client resumes from its cursor.
          this.onerror?.({
            message: `POST /v1/sse/ack answered ${res.status}${await errorCodeOf(res)}`,
          });
        }
      }
    } catch (error) {
      if (this.readyState === OPEN) this.onerror?.({ message: (error as Error).message });
    } finally {
      this.#acking = false;
    }
  }

  #fail(message: string): void {
    if (this.readyState === CLOSED) return;
    this.onerror?.({ message });
    this.#end(CloseCode.AbnormalClosure, message);
  }

  #end(code: number, reason: string): void {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    this.#abort.abort();
    this.onclose?.({ code, reason });
  }
}

/** `: <code>` of a JSON error body, or nothing. */
async function errorCodeOf(res: { text(): Promise<string> }): Promise<string> {
  try {
    const body = JSON.parse(await res.text()) as { error?: { code?: unknown } };
    return typeof body.error?.code === 'string' ? ` (${body.error.code})` : '';
  } catch {
    return '';
  }
}
