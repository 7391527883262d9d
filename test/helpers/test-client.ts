/**
 * A raw protocol client for black-box tests: a real `ws` socket that records
 * every frame, and waits on frames and closes with deadlines.
 */
import WebSocket from 'ws';
import type { EventFrame, ServerFrame, WelcomeFrame } from '../../src/protocol/frames.js';
import { waitFor } from './wait-for.js';

export interface ConnectOptions {
  token?: string;
  /** Send the token as `bearer.<jwt>` subprotocol instead of the header. */
  viaSubprotocol?: boolean;
  query?: Record<string, string | number>;
  headers?: Record<string, string>;
  protocols?: string[];
  /** Do not ack anything automatically (default: no auto-ack at all). */
  autoAck?: boolean;
  /** The local address to connect from (e.g. `127.0.0.3`, to tell a client from a proxy). */
  localAddress?: string;
}

export interface Closed {
  code: number;
  reason: string;
}

export class TestClient {
  readonly frames: ServerFrame[] = [];
  closedWith: Closed | null = null;
  readonly closed: Promise<Closed>;

  private constructor(
    readonly ws: WebSocket,
    private readonly autoAck: boolean,
  ) {
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closedWith = { code, reason: reason.toString() };
        resolve(this.closedWith);
      });
    });
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as ServerFrame;
      this.frames.push(frame);
      if (this.autoAck && frame.type === 'event') this.send({ type: 'ack', seq: frame.seq });
    });
    ws.on('error', () => undefined);
  }

  static url(base: string, query: ConnectOptions['query'] = {}): string {
    const params = new URLSearchParams(
      Object.entries(query).map(([k, v]) => [k, String(v)] as [string, string]),
    ).toString();
    return params ? `${base}?${params}` : base;
  }

  /** Opens a connection and waits for its welcome. */
  static async connect(base: string, options: ConnectOptions = {}): Promise<TestClient> {
    const client = TestClient.open(base, options);
    await new Promise<void>((resolve, reject) => {
      client.ws.once('open', () => resolve());
      client.ws.once('unexpected-response', (_req, res) =>
        reject(new Error(`handshake refused with ${res.statusCode}`)),
      );
      client.ws.once('error', reject);
    });
    await client.welcome();
    return client;
  }

  /** Opens without waiting for anything. */
  static open(base: string, options: ConnectOptions = {}): TestClient {
    const headers: Record<string, string> = { ...options.headers };
    const protocols = [...(options.protocols ?? [])];
    if (options.token !== undefined) {
      if (options.viaSubprotocol) protocols.push('agentsocket.v1', `bearer.${options.token}`);
      else headers.authorization = `Bearer ${options.token}`;
    }
    const ws = new WebSocket(TestClient.url(base, options.query), protocols, {
      headers,
      perMessageDeflate: false,
      ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
    });
    return new TestClient(ws, options.autoAck ?? false);
  }

  async welcome(timeoutMs = 5000): Promise<WelcomeFrame> {
    return waitFor(() => this.frames.find((f): f is WelcomeFrame => f.type === 'welcome'), {
      timeoutMs,
      what: 'the welcome frame',
    });
  }

  events(): EventFrame[] {
    return this.frames.filter((f): f is EventFrame => f.type === 'event');
  }

  seqs(): number[] {
    return this.events().map((e) => e.seq);
  }

  async waitForEvents(count: number, timeoutMs = 5000): Promise<EventFrame[]> {
    await waitFor(() => this.events().length >= count, {
      timeoutMs,
      what: `${count} events (have ${this.events().length})`,
    });
    return this.events();
  }

  async waitForFrame<T extends ServerFrame>(
    predicate: (frame: ServerFrame) => frame is T,
    timeoutMs = 5000,
  ): Promise<T> {
    return waitFor(() => this.frames.find(predicate), { timeoutMs, what: 'a matching frame' });
  }

  async waitForClose(timeoutMs = 5000): Promise<Closed> {
    return waitFor(() => this.closedWith, { timeoutMs, what: 'the close' });
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  ack(seq: number): void {
    this.send({ type: 'ack', seq });
  }

  close(): void {
    this.ws.close();
  }

  terminate(): void {
    this.ws.terminate();
  }
}

export interface Refusal {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: { error: { code: string; message: string; field?: string } };
}

/** Opens a handshake that must be refused before the upgrade; returns the HTTP answer. */
export async function expectRefusal(base: string, options: ConnectOptions = {}): Promise<Refusal> {
  const client = TestClient.open(base, options);
  return new Promise<Refusal>((resolve, reject) => {
    client.ws.once('open', () => {
      client.ws.close();
      reject(new Error('handshake was accepted'));
    });
    client.ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text) });
        } catch (error) {
          reject(error);
        }
      });
    });
  });
}
