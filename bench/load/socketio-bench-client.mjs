/**
 * A Socket.IO client as an application would use it: `socket.io-client`,
 * websocket transport only, no reconnection, the token in `auth`. Socket.IO
 * parses every packet itself; latency comes from `data.bt`.
 */
import { io } from 'socket.io-client';
import { nowMs } from '../lib/clock.mjs';

export class SocketIoBenchClient {
  constructor({ port, token, sink }) {
    this.port = port;
    this.token = token;
    this.sink = sink;
    this.socket = null;
    this.closing = false;
  }

  /** Resolves at `connect` (engine.io open and the Socket.IO CONNECT answered). */
  open(timeoutMs) {
    return new Promise((resolve, reject) => {
      const socket = io(`http://127.0.0.1:${this.port}`, {
        transports: ['websocket'],
        auth: { token: this.token },
        reconnection: false,
        forceNew: true,
        timeout: timeoutMs,
        perMessageDeflate: false,
      });
      this.socket = socket;
      let ready = false;
      const onData = (data) => this.sink.record(data.bt, nowMs());
      socket.on('token', onData);
      socket.on('bench', onData);
      socket.once('connect', () => {
        ready = true;
        resolve();
      });
      socket.once('connect_error', (error) => {
        if (!ready) reject(error);
      });
      socket.on('disconnect', (reason) => {
        if (ready && !this.closing) this.sink.unexpectedClose(reason);
      });
    });
  }

  close() {
    this.closing = true;
    this.socket?.disconnect();
  }
}
