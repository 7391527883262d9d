/**
 * WebSocket at the byte level, for tests that send what no well-behaved
 * client library would: a tiny builder of client frames (any opcode, reserved
 * bits, lengths that lie, masked or not) and a raw TCP connection that does
 * the upgrade by hand and then parses what the server sends back.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { waitFor } from './wait-for.js';

export interface FrameSpec {
  /** Default true. */
  fin?: boolean;
  /** RSV1..3 as a 3-bit number. Default 0. */
  rsv?: number;
  opcode: number;
  payload?: Buffer | string;
  /** Client frames must be masked; false sends an unmasked one. Default true. */
  masked?: boolean;
  /** Claim this payload length in the header instead of the real one. */
  declaredLength?: number;
}

/** Encodes one frame as a client sends it (masked unless told otherwise). */
export function clientFrame(spec: FrameSpec): Buffer {
  const payload =
    typeof spec.payload === 'string'
      ? Buffer.from(spec.payload)
      : (spec.payload ?? Buffer.alloc(0));
  const length = spec.declaredLength ?? payload.length;
  const masked = spec.masked ?? true;
  const first =
    ((spec.fin ?? true) ? 0x80 : 0) | (((spec.rsv ?? 0) & 0x7) << 4) | (spec.opcode & 0xf);
  let header: Buffer;
  if (length < 126) {
    header = Buffer.from([first, (masked ? 0x80 : 0) | length]);
  } else if (length < 0x10000) {
    header = Buffer.alloc(4);
    header[0] = first;
    header[1] = (masked ? 0x80 : 0) | 126;
    header.writeUInt16BE(length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = first;
    header[1] = (masked ? 0x80 : 0) | 127;
    header.writeBigUInt64BE(BigInt(length), 2);
  }
  if (!masked) return Buffer.concat([header, payload]);
  const mask = randomBytes(4);
  const body = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) {
    body[i] = (payload[i] as number) ^ (mask[i % 4] as number);
  }
  return Buffer.concat([header, mask, body]);
}

export interface ServerFrameRead {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** The request head of a WebSocket upgrade, for tests that tamper with it. */
export function upgradeRequest(path: string, headers: Record<string, string>): string {
  const lines = [`GET ${path} HTTP/1.1`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** The headers of a valid upgrade with a bearer token. */
export function upgradeHeaders(host: string, token: string): Record<string, string> {
  return {
    Host: host,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
    'Sec-WebSocket-Version': '13',
    Authorization: `Bearer ${token}`,
  };
}

/**
 * A TCP connection speaking WebSocket by hand. Records the HTTP answer and
 * every server frame; `closeCode` is the code of the server's close frame.
 */
export class RawWebSocket {
  status: number | null = null;
  readonly frames: ServerFrameRead[] = [];
  closeCode: number | null = null;
  ended = false;
  private pending = Buffer.alloc(0);
  private headDone = false;
  /** The raw HTTP answer head (and body for refusals). */
  httpText = '';

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => (this.ended = true));
    socket.on('error', () => undefined);
  }

  /** Opens a TCP connection to `port` and sends `request` verbatim (nothing when omitted). */
  static async open(port: number, request?: string | Buffer): Promise<RawWebSocket> {
    const socket = connect(port, '127.0.0.1');
    const raw = new RawWebSocket(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    if (request !== undefined) socket.write(request);
    return raw;
  }

  /** A valid upgrade for `token` on `path`; resolves once the 101 arrived. */
  static async upgrade(port: number, path: string, token: string): Promise<RawWebSocket> {
    const raw = await RawWebSocket.open(
      port,
      upgradeRequest(path, upgradeHeaders(`127.0.0.1:${port}`, token)),
    );
    await waitFor(() => raw.status !== null || raw.ended, { what: 'the upgrade answer' });
    if (raw.status !== 101) throw new Error(`upgrade refused: ${raw.httpText.slice(0, 200)}`);
    return raw;
  }

  /** Writes bytes; false once the socket is gone (the server cut it off). */
  write(bytes: Buffer | string): boolean {
    if (this.socket.destroyed || !this.socket.writable) return false;
    this.socket.write(bytes);
    return true;
  }

  /** Text payloads of the server's text frames, parsed as JSON. */
  json(): unknown[] {
    return this.frames
      .filter((f) => f.opcode === 0x1)
      .map((f) => JSON.parse(f.payload.toString('utf8')) as unknown);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.pending = Buffer.concat([this.pending, chunk]);
    if (!this.headDone) {
      const end = this.pending.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.pending.subarray(0, end).toString('latin1');
      this.status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      this.headDone = true;
      this.httpText = this.pending.toString('latin1');
      this.pending = this.pending.subarray(end + 4);
      if (this.status !== 101) return;
    }
    if (this.status !== 101) {
      this.httpText += chunk.toString('latin1');
      return;
    }
    this.parseFrames();
  }

  private parseFrames(): void {
    for (;;) {
      const buf = this.pending;
      if (buf.length < 2) return;
      let length = (buf[1] as number) & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (buf.length < 4) return;
        length = buf.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (buf.length < 10) return;
        length = Number(buf.readBigUInt64BE(2));
        offset = 10;
      }
      if (buf.length < offset + length) return;
      const frame = {
        fin: ((buf[0] as number) & 0x80) !== 0,
        opcode: (buf[0] as number) & 0x0f,
        payload: buf.subarray(offset, offset + length),
      };
      this.frames.push(frame);
      if (frame.opcode === 0x8 && this.closeCode === null) {
        this.closeCode = frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : 1005;
      }
      this.pending = buf.subarray(offset + length);
    }
  }
}
