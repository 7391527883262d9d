/**
 * A raw reader of `GET /v1/sse` for tests: node:http (so the raw bytes are
 * seen, `\r` included), the frames parsed from them as an SSE reader would
 * (`id:` and `data:` lines, `: ` comments), and waits with deadlines.
 */
import { request, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { waitFor } from './wait-for.js';

export interface SseFrame {
  id?: string;
  // Frames differ by type; each test reads the fields it checks.
  data: Record<string, unknown> & { type: string };
}

export interface SseOpenOptions {
  headers?: Record<string, string>;
  /** A Unix socket to reach the server through, instead of the URL's host. */
  socketPath?: string;
}

export class SseStream {
  raw = '';
  readonly frames: SseFrame[] = [];
  comments = 0;
  ended = false;
  private pending = '';

  private constructor(
    readonly status: number,
    readonly headers: IncomingMessage['headers'],
    private readonly res: IncomingMessage,
  ) {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => this.onData(chunk));
    res.on('end', () => (this.ended = true));
    res.on('close', () => (this.ended = true));
    res.on('error', () => (this.ended = true));
  }

  /** Opens the stream; resolves at the response head (any status). */
  static open(url: string, options: SseOpenOptions = {}): Promise<SseStream> {
    return new Promise((resolve, reject) => {
      const req = request(url, {
        method: 'GET',
        headers: { accept: 'text/event-stream', ...options.headers },
        ...(options.socketPath !== undefined ? { socketPath: options.socketPath } : {}),
      });
      req.on('response', (res) => resolve(new SseStream(res.statusCode ?? 0, res.headers, res)));
      req.on('error', reject);
      req.end();
    });
  }

  /** The JSON error body of a refusal. */
  async errorBody(): Promise<{ error: { code: string; message: string; field?: string } }> {
    await waitFor(() => this.ended, { what: 'the refusal body' });
    return JSON.parse(this.raw) as { error: { code: string; message: string; field?: string } };
  }

  /** The frames of a type. */
  ofType(type: string): SseFrame[] {
    return this.frames.filter((f) => f.data.type === type);
  }

  /** The event frames' seqs, in order. */
  get seqs(): number[] {
    return this.ofType('event').map((f) => f.data.seq as number);
  }

  async welcome(): Promise<SseFrame['data']> {
    await waitFor(() => this.frames[0], { what: 'the welcome' });
    const first = this.frames[0]!.data;
    if (first.type !== 'welcome') throw new Error(`first frame is ${first.type}`);
    return first;
  }

  async waitForEvents(n: number, timeoutMs = 5000): Promise<SseFrame[]> {
    await waitFor(() => this.ofType('event').length >= n, {
      what: `${n} events (have ${this.ofType('event').length})`,
      timeoutMs,
    });
    return this.ofType('event');
  }

  /** Waits for the stream's end; returns its last frame, which should be `close`. */
  async waitForEnd(timeoutMs = 5000): Promise<SseFrame['data'] | undefined> {
    await waitFor(() => this.ended, { what: 'the end of the stream', timeoutMs });
    return this.frames.at(-1)?.data;
  }

  /** The TCP socket under the response. */
  get socket(): Socket {
    return this.res.socket;
  }

  pause(): void {
    this.res.pause();
  }

  resume(): void {
    this.res.resume();
  }

  /** Leaves: the connection is destroyed. */
  close(): void {
    this.res.destroy();
  }

  private onData(chunk: string): void {
    this.raw += chunk;
    this.pending += chunk;
    let end: number;
    while ((end = this.pending.indexOf('\n\n')) !== -1) {
      const block = this.pending.slice(0, end);
      this.pending = this.pending.slice(end + 2);
      let id: string | undefined;
      let data: string | undefined;
      for (const line of block.split('\n')) {
        if (line.startsWith(': ')) this.comments++;
        else if (line.startsWith('id: ')) id = line.slice(4);
        else if (line.startsWith('data: ')) data = line.slice(6);
      }
      if (data !== undefined) {
        const frame: SseFrame = { data: JSON.parse(data) as SseFrame['data'] };
        if (id !== undefined) frame.id = id;
        this.frames.push(frame);
      }
    }
  }
}
