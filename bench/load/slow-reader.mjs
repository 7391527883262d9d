/**
 * A reader of one user's token flood that reads slowly (the slow-reader
 * scenario): a WebSocket on the server's Unix socket whose reading is paced
 * to `bytesPerSecond` by pausing its socket once it has read its budget. It
 * speaks just enough of each system's protocol to reassemble the run's text:
 * - agentsocket: `event` frames (merged deltas included: `seqFrom`..`seq`),
 *   acking critical events and answering pings;
 * - bare ws: `{event, runId, data}` messages;
 * - Socket.IO 4: the Engine.IO/Socket.IO packets (`0` open, `40` connect with
 *   the token in `auth`, `42[event, data]`, `2` ping → `3` pong), written out
 *   here because `socket.io-client` cannot dial a Unix socket.
 */
import WebSocket from 'ws';
import { nowMs } from '../lib/clock.mjs';

const TICK_MS = 50;

export class SlowReader {
  constructor({ system, unixPath, userId, bytesPerSecond }) {
    this.system = system;
    this.userId = userId;
    this.frames = 0;
    this.bytes = 0;
    this.text = '';
    this.mergedFrames = 0;
    this.completedAtMs = null;
    this.closedWith = null;
    const path = system === 'socketio' ? '/socket.io/?EIO=4&transport=websocket' : '/v1/ws';
    const url = `ws+unix://${unixPath}:${path}`;
    const headers = system === 'socketio' ? {} : { authorization: `Bearer ${userId}` };
    this.ws = new WebSocket(url, { headers, perMessageDeflate: false });
    this.ws.on('message', (data) => this.onMessage(data.toString()));
    this.ws.on('close', (code) => {
      this.closedWith = code;
    });
    this.ws.on('error', () => undefined);
    this.opened = new Promise((resolve, reject) => {
      this.ready = resolve;
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_req, res) =>
        reject(new Error(`handshake refused with ${res.statusCode}`)),
      );
    });
    this.budget = 0;
    this.read = 0;
    this.bytesPerSecond = bytesPerSecond;
  }

  /** Resolves once the connection can receive the user's events. */
  async open() {
    await new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
    });
    if (this.system !== 'socketio') this.ready();
    await this.opened;
    this.pace();
  }

  pace() {
    const socket = this.ws._socket;
    socket.on('data', (chunk) => {
      this.read += chunk.length;
      if (this.read >= this.budget) socket.pause();
    });
    this.ticker = setInterval(() => {
      this.budget += (this.bytesPerSecond * TICK_MS) / 1000;
      if (this.read < this.budget) socket.resume();
    }, TICK_MS);
  }

  onMessage(text) {
    this.frames++;
    this.bytes += Buffer.byteLength(text);
    if (this.system === 'socketio') return this.onEngineIo(text);
    const message = JSON.parse(text);
    if (this.system === 'ws') return this.onEvent(message.event, message.data);
    if (message.type === 'ping') this.ws.send('{"type":"pong"}');
    if (message.type !== 'event') return;
    if (message.critical) this.ws.send(JSON.stringify({ type: 'ack', seq: message.seq }));
    if (message.seqFrom !== undefined) this.mergedFrames++;
    this.onEvent(message.event, message.data);
  }

  onEngineIo(text) {
    if (text.startsWith('0')) this.ws.send(`40${JSON.stringify({ token: this.userId })}`);
    else if (text === '2') this.ws.send('3');
    else if (text.startsWith('40')) this.ready();
    else if (text.startsWith('42')) {
      const [event, data] = JSON.parse(text.slice(2));
      this.onEvent(event, data);
    }
  }

  onEvent(event, data) {
    if (event === 'agent_thinking') this.text += data.text;
    else if (event === 'agent_completed') this.completedAtMs = nowMs();
  }

  close() {
    clearInterval(this.ticker);
    this.ws.terminate();
  }
}
