/**
 * A load generator process: opens client sockets to one server under test,
 * counts what arrives, and answers the orchestrator over IPC. Several of them
 * may share the users of a run (`--loaders`), each with its own slice.
 */
import { SignJWT } from 'jose';
import { isAgentsocket } from '../lib/bench-config.mjs';
import { nowMs } from '../lib/clock.mjs';
import { serveRpc } from '../lib/rpc.mjs';
import { DeliverySink } from './delivery-sink.mjs';
import { RawWsClient } from './raw-ws-client.mjs';
import { SocketIoBenchClient } from './socketio-bench-client.mjs';

const POLL_MS = 5;

class Loader {
  constructor() {
    this.sink = new DeliverySink();
    /** Open clients, in the order of the user ids of the last `connect`. */
    this.clients = [];
    /** Tokens by user id, signed once before anything is timed. */
    this.tokens = new Map();
  }

  async tokensFor(userIds, auth, secret) {
    if (auth === 'none') return userIds;
    const key = new TextEncoder().encode(secret);
    const exp = Math.floor(Date.now() / 1000) + 3600;
    for (const userId of userIds) {
      if (this.tokens.has(userId)) continue;
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(userId)
        .setIssuedAt()
        .setExpirationTime(exp)
        .sign(key);
      this.tokens.set(userId, token);
    }
    return userIds.map((userId) => this.tokens.get(userId));
  }

  makeClient(system, port, token, ackEvery, ackPhase, cursor) {
    if (system === 'socketio') return new SocketIoBenchClient({ port, token, sink: this.sink });
    const kind = isAgentsocket(system) ? 'agentsocket' : 'ws';
    return new RawWsClient({ kind, port, token, sink: this.sink, ackEvery, ackPhase, cursor });
  }

  /**
   * Opens one client per user id, at most `concurrency` handshakes in flight.
   * With `resume`, each client resumes from the cursor of the client that held
   * the same position before the last `disconnect`.
   *
   * Client i starts its ack count at i mod `ackEvery`: the publishers go
   * round-robin over the users, so clients counting from zero together would
   * all reach their `ackEvery`th event in the same round and send their acks
   * as one burst, which no deployment sees (its clients connected at different
   * times, and the SDK acks on a timer started by each client's own events).
   * `setAckEvery` with `inStepAfter` brings that burst back on purpose.
   */
  async connect({ system, port, userIds, auth, secret, concurrency, timeoutMs, ackEvery, resume }) {
    const tokens = await this.tokensFor(userIds, auth, secret); // already signed by `prepare`
    const cursors = resume ? this.clients.map((client) => client.position()) : [];
    if (resume && cursors.length !== userIds.length) {
      throw new Error(`resume needs ${userIds.length} earlier clients, have ${cursors.length}`);
    }
    const clients = userIds.map((_userId, i) =>
      this.makeClient(system, port, tokens[i], ackEvery, i % ackEvery, resume ? cursors[i] : null),
    );
    this.clients = clients;
    const errors = {};
    let opened = 0;
    let next = 0;
    const startMs = nowMs();
    const lane = async () => {
      while (next < clients.length) {
        const client = clients[next++];
        try {
          await client.open(timeoutMs);
          opened++;
        } catch (error) {
          const key = String(error?.message ?? error).slice(0, 80);
          errors[key] = (errors[key] ?? 0) + 1;
        }
      }
    };
    const lanes = Math.max(1, Math.min(concurrency, clients.length));
    await Promise.all(Array.from({ length: lanes }, lane));
    return { opened, failed: clients.length - opened, startMs, endMs: nowMs(), errors };
  }

  /** Polls (off the hot path) until `field` of the sink reaches `target` or time is up. */
  waitFor(field, target, timeoutMs) {
    const deadline = nowMs() + timeoutMs;
    return new Promise((resolve) => {
      const check = () => {
        const value = this.sink[field];
        if (value >= target || nowMs() >= deadline) {
          resolve({ value, timedOut: value < target, snapshot: this.snapshot() });
        } else setTimeout(check, POLL_MS);
      };
      check();
    });
  }

  snapshot() {
    return { ...this.sink.toJSON(), cpu: process.cpuUsage(), clients: this.clients.length };
  }

  /**
   * Every client acks every `ackEvery` events from now on (null: never). With
   * `inStepAfter`, every client acks after its next `inStepAfter` events, all
   * in the same round: the worst case of acks arriving together.
   */
  setAckEvery(ackEvery, inStepAfter) {
    for (const client of this.clients) {
      client.ackEvery = ackEvery ?? Infinity;
      if (ackEvery !== null && inStepAfter !== undefined) client.sinceAck = ackEvery - inStepAfter;
    }
    return this.clients.length;
  }

  /** Terminates every client (no close handshake); their cursors stay for a resume. */
  async disconnect() {
    for (const client of this.clients) client.close();
    return this.clients.length;
  }
}

const loader = new Loader();
serveRpc({
  prepare: async ({ userIds, auth, secret }) =>
    (await loader.tokensFor(userIds, auth, secret)).length,
  connect: (args) => loader.connect(args),
  reset: () => {
    loader.sink.reset();
    return loader.snapshot();
  },
  snapshot: () => loader.snapshot(),
  waitReceived: ({ target, timeoutMs }) => loader.waitFor('received', target, timeoutMs),
  waitCaughtUp: ({ target, timeoutMs }) => loader.waitFor('caughtUp', target, timeoutMs),
  disconnect: () => loader.disconnect(),
  // null (JSON has no Infinity): clients stop acking.
  setAckEvery: ({ ackEvery, inStepAfter }) => loader.setAckEvery(ackEvery, inStepAfter),
});
process.send({ kind: 'ready', pid: process.pid });
