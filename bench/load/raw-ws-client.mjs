/**
 * A cheap client for the bare ws server and for agentsocket: one `ws` socket,
 * no JSON.parse on the hot path. A data message is recognised by its send
 * timestamp (`"bt":`), read in place from the Buffer; for agentsocket the
 * `"seq":` is read the same way, kept as the resume cursor and acked
 * (cumulatively) every `ackEvery` events, each client at its own phase. Only the `welcome` (once per
 * connection) is parsed as JSON.
 */
import WebSocket from 'ws';
import { nowMs } from '../lib/clock.mjs';
import { readNumber } from './buffer-number.mjs';

const BT_KEY = Buffer.from('"bt":');
const SEQ_KEY = Buffer.from('"seq":');
const PING = Buffer.from('{"type":"ping"}');
const PONG = '{"type":"pong"}';

export class RawWsClient {
  /**
   * @param kind 'ws' (ready at open) or 'agentsocket' (ready at `welcome`)
   * @param cursor `{ lastSeq, epoch }` to resume from, or null
   */
  /**
   * @param ackPhase events counted as already unacked at the start, so that
   *   clients created together do not all ack the same round (see `Loader.connect`)
   */
  constructor({ kind, port, token, sink, ackEvery, ackPhase = 0, cursor }) {
    this.kind = kind;
    this.port = port;
    this.token = token;
    this.sink = sink;
    this.ackEvery = ackEvery;
    this.cursor = cursor;
    this.ws = null;
    this.closing = false;
    this.epoch = cursor?.epoch ?? null;
    this.lastSeq = cursor?.lastSeq ?? 0;
    this.sinceAck = ackPhase;
    this.replayLeft = 0;
    this.dialAt = 0;
  }

  url() {
    if (this.kind === 'ws') return `ws://127.0.0.1:${this.port}/`;
    const resume = this.cursor
      ? `?lastSeq=${this.cursor.lastSeq}&epoch=${encodeURIComponent(this.cursor.epoch)}`
      : '';
    return `ws://127.0.0.1:${this.port}/v1/ws${resume}`;
  }

  /** Resolves when the client can receive: `open` for ws, `welcome` for agentsocket. */
  open(timeoutMs) {
    this.dialAt = nowMs();
    return new Promise((resolve, reject) => {
      let ready = false;
      const ws = new WebSocket(this.url(), {
        headers: { authorization: `Bearer ${this.token}` },
        perMessageDeflate: false,
        handshakeTimeout: timeoutMs,
      });
      this.ws = ws;
      const timer = setTimeout(() => {
        if (ready) return;
        ws.terminate();
        reject(new Error('ready timeout'));
      }, timeoutMs);
      const becomeReady = () => {
        ready = true;
        clearTimeout(timer);
        resolve();
      };
      ws.on('error', (error) => {
        if (ready) return;
        clearTimeout(timer);
        reject(error);
      });
      ws.on('close', (code) => {
        if (!ready) {
          clearTimeout(timer);
          reject(new Error(`closed before ready: ${code}`));
        } else if (!this.closing) {
          this.sink.unexpectedClose(code);
        }
      });
      if (this.kind === 'ws') {
        ws.on('open', becomeReady);
        ws.on('message', (data) => this.onBareMessage(data));
      } else {
        ws.on('message', (data) => {
          if (ready) this.onAgentsocketMessage(data);
          else if (this.onWelcome(data)) becomeReady();
        });
      }
    });
  }

  onBareMessage(data) {
    const at = data.indexOf(BT_KEY);
    if (at !== -1) this.sink.record(readNumber(data, at + BT_KEY.length), nowMs());
  }

  onWelcome(data) {
    let frame;
    try {
      frame = JSON.parse(data.toString());
    } catch {
      return false;
    }
    if (frame.type !== 'welcome') return false;
    this.epoch = frame.epoch;
    if (this.cursor) {
      this.replayLeft = frame.replay?.count ?? 0;
      if (frame.replay?.gap) this.sink.gaps++;
      if (this.replayLeft === 0) this.sink.recordCatchUp(nowMs() - this.dialAt);
    }
    return true;
  }

  onAgentsocketMessage(data) {
    const at = data.indexOf(BT_KEY);
    if (at === -1) {
      if (data.equals(PING)) this.ws.send(PONG);
      return;
    }
    const receivedAt = nowMs();
    this.sink.record(readNumber(data, at + BT_KEY.length), receivedAt);
    const seqAt = data.indexOf(SEQ_KEY);
    if (seqAt === -1) return; // a broadcast: no seq
    this.lastSeq = readNumber(data, seqAt + SEQ_KEY.length);
    if (this.replayLeft > 0) {
      this.sink.replayed++;
      if (--this.replayLeft === 0) this.sink.recordCatchUp(receivedAt - this.dialAt);
    }
    if (++this.sinceAck >= this.ackEvery) {
      this.sinceAck = 0;
      this.ws.send(`{"type":"ack","seq":${this.lastSeq}}`);
    }
  }

  /** The cursor a reconnect would resume from. */
  position() {
    return { lastSeq: this.lastSeq, epoch: this.epoch };
  }

  close() {
    this.closing = true;
    this.ws?.terminate();
  }
}
