/**
 * One simulated device of a user (a browser tab, a phone): a raw `ws` client
 * that follows the protocol as docs/client.md describes the SDK: it waits for
 * the `welcome`, answers pings, acks critical events at once and the others
 * every `ACK_EVERY_MS`, and after every close resumes with `lastSeq` + `epoch`
 * on a random node. Like the SDK's seq tracker it hands each seq of an epoch
 * to the "app" once, in order; what the app gets is recorded for the checker.
 *
 * What it counts (docs/reliability.md, "Reading the output"):
 * - `redelivered`: a seq at or below the cursor (the SDK drops it). With an
 *   exact cursor the docs promise none, so the checker reports them.
 * - `skips`: a seq past `lastSeq + 1` with no `gap: true` welcome saying so.
 * - `gaps`: `gap: true` welcomes, explained (new epoch, or history trimmed
 *   past the cursor) or not (same epoch, cursor ahead of the head: a stream
 *   rolled back).
 */
import { URLSearchParams } from 'node:url';
import WebSocket from 'ws';

const ACK_EVERY_MS = 500;
const BACKOFF_FIRST_MS = 100;
const BACKOFF_MAX_MS = 2_000;

export class SoakDevice {
  /**
   * @param {object} user the SoakUser this device belongs to (`id`, `token`)
   * @param {number} index device number within the user
   * @param {() => string} pickUrl a node's ws URL, chosen at random
   */
  constructor(user, index, pickUrl) {
    this.user = user;
    this.index = index;
    this.pickUrl = pickUrl;
    this.ws = undefined;
    this.epoch = null;
    this.lastSeq = 0;
    /** Seq that opens the replay of a `gap: true` welcome: the one skip it explains. */
    this.gapFrom = null;
    this.welcomed = false;
    this.stopped = false;
    this.attempt = 0;
    this.stallTimer = undefined;
    this.ackTimer = undefined;
    this.lastReceivedSeq = 0;
    this.lastAckedSeq = 0;
    /** Publish counters the app received, in order. */
    this.delivered = [];
    this.deliveredSet = new Set();
    this.counts = {
      connects: 0,
      refused: 0,
      redelivered: 0,
      skips: 0,
      duplicates: 0,
      reordered: 0,
      stalls: 0,
      drops: 0,
      errorFrames: 0,
    };
    /** `{explained, reason, epochChanged, cursor, headSeq, from}` per gap welcome. */
    this.gaps = [];
    /** Close codes seen, by code. */
    this.closes = new Map();
  }

  get connected() {
    return this.welcomed && this.ws?.readyState === WebSocket.OPEN;
  }

  connect() {
    if (this.stopped) return;
    const params = new URLSearchParams();
    if (this.epoch !== null) {
      params.set('lastSeq', String(this.lastSeq));
      params.set('epoch', this.epoch);
    }
    const query = params.toString();
    const base = this.pickUrl();
    const ws = new WebSocket(query ? `${base}?${query}` : base, {
      headers: { authorization: `Bearer ${this.user.token}` },
      perMessageDeflate: false,
      handshakeTimeout: 10_000,
    });
    this.ws = ws;
    this.welcomed = false;
    this.lastReceivedSeq = 0;
    this.lastAckedSeq = 0;
    ws.on('unexpected-response', (_req, res) => {
      this.counts.refused++;
      res.resume();
      ws.terminate();
    });
    ws.on('error', () => undefined);
    ws.on('message', (data) => this.onFrame(ws, JSON.parse(data.toString())));
    ws.on('close', (code) => {
      if (this.ws !== ws) return;
      this.closes.set(code, (this.closes.get(code) ?? 0) + 1);
      this.welcomed = false;
      clearTimeout(this.ackTimer);
      this.ackTimer = undefined;
      this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    if (this.stopped) return;
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    this.attempt++;
    setTimeout(() => this.connect(), ceiling / 2 + Math.random() * (ceiling / 2));
  }

  onFrame(ws, frame) {
    if (ws !== this.ws) return;
    switch (frame.type) {
      case 'welcome':
        this.onWelcome(frame);
        break;
      case 'event':
        this.onEvent(frame);
        break;
      case 'ping':
        ws.send('{"type":"pong"}');
        break;
      case 'error':
        this.counts.errorFrames++;
        break;
      default:
        break;
    }
  }

  onWelcome(welcome) {
    this.counts.connects++;
    this.attempt = 0;
    this.welcomed = true;
    const { replay, epoch, headSeq } = welcome;
    const epochChanged = this.epoch !== null && this.epoch !== epoch;
    if (replay.gap) {
      const cursor = this.epoch === null ? null : this.lastSeq;
      // The docs allow a gap for a new epoch (stream reset) and for a cursor
      // history no longer reaches (trimmed). A cursor of the same epoch ahead
      // of the head means the stream rolled back: nothing documents that.
      const trimmed = !epochChanged && cursor !== null && cursor <= headSeq;
      const explained = epochChanged || trimmed || cursor === null;
      this.gaps.push({
        explained,
        reason: epochChanged
          ? 'new epoch'
          : trimmed
            ? 'history trimmed'
            : cursor === null
              ? 'first connect'
              : 'same epoch, cursor ahead of the head (stream rolled back)',
        cursor,
        headSeq,
        from: replay.from,
      });
      this.gapFrom = replay.from;
    }
    if (this.epoch !== epoch) {
      // As the SDK's seq tracker: the new stream's cursor starts where its
      // replay starts (after a Redis restart that moved the epoch, the
      // retained events before `from` are ones this device already has).
      this.epoch = epoch;
      this.lastSeq = replay.from - 1;
    }
  }

  onEvent(frame) {
    if (!this.welcomed) return;
    this.lastReceivedSeq = frame.seq;
    if (frame.critical) this.ack(frame.seq);
    else this.ackTimer ??= setTimeout(() => this.ackLatest(), ACK_EVERY_MS);
    if (frame.seq <= this.lastSeq) {
      this.counts.redelivered++;
      return;
    }
    if (frame.seq !== this.lastSeq + 1 && frame.seq !== this.gapFrom) this.counts.skips++;
    this.gapFrom = null;
    this.lastSeq = frame.seq;
    this.deliver(frame.data?.n);
  }

  /** The app's view: each publish counter once, in the order they were published. */
  deliver(n) {
    if (typeof n !== 'number') return;
    if (this.deliveredSet.has(n)) {
      this.counts.duplicates++;
      return;
    }
    const last = this.delivered.length > 0 ? this.delivered[this.delivered.length - 1] : -1;
    if (n < last) this.counts.reordered++;
    this.delivered.push(n);
    this.deliveredSet.add(n);
  }

  ack(seq) {
    if (seq <= this.lastAckedSeq || this.ws?.readyState !== WebSocket.OPEN) return;
    this.lastAckedSeq = seq;
    this.ws.send(`{"type":"ack","seq":${seq}}`);
  }

  ackLatest() {
    this.ackTimer = undefined;
    this.ack(this.lastReceivedSeq);
  }

  /** Chaos: the socket dies under the client (no close handshake). */
  drop() {
    if (this.ws === undefined || this.ws.readyState !== WebSocket.OPEN) return false;
    this.counts.drops++;
    this.ws.terminate();
    return true;
  }

  /** Chaos: the client stops reading for `ms` (a frozen tab, a phone in a tunnel). */
  stall(ms) {
    const ws = this.ws;
    if (ws === undefined || ws.readyState !== WebSocket.OPEN || ws.isPaused) return false;
    this.counts.stalls++;
    ws.pause();
    this.stallTimer = setTimeout(() => {
      if (ws.isPaused) ws.resume();
    }, ms);
    return true;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.stallTimer);
    clearTimeout(this.ackTimer);
    this.ws?.terminate();
  }
}
