/**
 * The control surface every bench server exposes, whatever it serves: the
 * orchestrator drives publishing over IPC, and publishing happens here, in the
 * server's own process, through a small adapter. Every system does the same
 * work per message: build `{bt, text}` (bt = send time), hand it to its
 * publish or broadcast, yield to I/O between rounds.
 *
 * An adapter is `{ listen(): Promise<{port}>, publish(userId, data),
 * broadcast(data), connectionCount(), close() }`; `publish` and `broadcast`
 * may return a Promise (awaited per round, which bounds what is in flight).
 * An optional `info` object is passed on with the `ready` announcement.
 */
import { rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nowMs } from '../lib/clock.mjs';
import { serveRpc } from '../lib/rpc.mjs';

/**
 * Every server also answers on a Unix socket of its own (the slow-reader
 * scenario): loopback TCP lets the kernel buffer about 4 MiB per connection,
 * enough to hide a whole token flood from the server, where a Unix socket
 * holds a few hundred KiB, about what a real path to a slow reader holds.
 */
const unixPath = join(tmpdir(), `agentsocket-bench-${process.pid}.sock`);

const yieldToIo = () => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function text(bytes) {
  return 'x'.repeat(bytes);
}

function collectGarbage() {
  if (typeof globalThis.gc !== 'function') throw new Error('run the server with --expose-gc');
  // Twice: the first pass may leave finalizable objects for the second.
  globalThis.gc();
  globalThis.gc();
}

function usage() {
  const memory = process.memoryUsage();
  return {
    cpu: process.cpuUsage(),
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    external: memory.external,
  };
}

/** Publishes `perUser` events to every user, one round per event, as fast as it can. */
async function saturate(adapter, { userIds, perUser, textBytes }) {
  const body = text(textBytes);
  const startMs = nowMs();
  let published = 0;
  for (let round = 0; round < perUser; round++) {
    const pending = [];
    for (const userId of userIds) {
      const result = adapter.publish(userId, { bt: nowMs(), text: body });
      if (result) pending.push(result);
      published++;
    }
    if (pending.length > 0) await Promise.all(pending);
    await yieldToIo();
  }
  return { published, startMs, endMs: nowMs() };
}

/**
 * Publishes `total` events at `ratePerSec`, round-robin over the users, in
 * small batches paced by the clock. Stops at `total` or at 3× the planned
 * duration (a server that cannot keep up reports the rate it reached).
 */
async function atRate(adapter, { userIds, ratePerSec, total, textBytes }) {
  const body = text(textBytes);
  const startMs = nowMs();
  const deadline = startMs + (3 * 1000 * total) / ratePerSec;
  let published = 0;
  let cursor = 0;
  while (published < total && nowMs() < deadline) {
    const due = Math.min(total, Math.floor(((nowMs() - startMs) * ratePerSec) / 1000)) - published;
    const pending = [];
    for (let i = 0; i < due; i++) {
      const result = adapter.publish(userIds[cursor], { bt: nowMs(), text: body });
      if (result) pending.push(result);
      cursor = cursor + 1 === userIds.length ? 0 : cursor + 1;
    }
    published += Math.max(0, due);
    if (pending.length > 0) await Promise.all(pending);
    await sleep(1);
  }
  return { published, startMs, endMs: nowMs() };
}

/**
 * A token flood (the slow-reader scenario): one run of `deltas` one-character
 * `agent_thinking` deltas to one user, published as fast as the system takes
 * them (yielding to I/O every `batch`, as a busy agent host would), between
 * its `agent_started` and `agent_completed`. Returns the text published.
 */
async function flood(adapter, { userId, runId, deltas, batch }) {
  if (typeof adapter.publishEvent !== 'function') throw new Error('no publishEvent in this server');
  const startMs = nowMs();
  await adapter.publishEvent(userId, 'agent_started', runId, { agent: 'bench' });
  let text = '';
  for (let i = 0; i < deltas; i++) {
    const char = String.fromCharCode(97 + (i % 26));
    text += char;
    const result = adapter.publishEvent(userId, 'agent_thinking', runId, { text: char });
    if (result) await result;
    if (i % batch === batch - 1) await yieldToIo();
  }
  await adapter.publishEvent(userId, 'agent_completed', runId, { status: 'succeeded' });
  return { published: deltas + 2, startMs, endMs: nowMs(), text };
}

async function broadcastMany(adapter, { count, textBytes }) {
  const body = text(textBytes);
  const startMs = nowMs();
  for (let i = 0; i < count; i++) {
    const result = adapter.broadcast({ bt: nowMs(), text: body });
    if (result) await result;
    await yieldToIo();
  }
  return { published: count, startMs, endMs: nowMs() };
}

/** Starts the adapter's server, serves the control commands, announces `ready`. */
export async function hostServer(adapter) {
  const { port } = await adapter.listen();
  serveRpc({
    usage: () => usage(),
    usageAfterGc: () => {
      collectGarbage();
      return usage();
    },
    connections: () => adapter.connectionCount(),
    saturate: (args) => saturate(adapter, args),
    rate: (args) => atRate(adapter, args),
    broadcast: (args) => broadcastMany(adapter, args),
    flood: (args) => flood(adapter, args),
    close: async () => {
      await adapter.close();
      return true;
    },
    /** Exits normally after answering (lets `--cpu-prof` write its profile). */
    exit: () => {
      setImmediate(() => process.exit(0));
      return true;
    },
  });
  process.send({ kind: 'ready', port, unixPath, pid: process.pid, info: adapter.info ?? {} });
}

/**
 * The same listen for every system: loopback only, a backlog large enough for
 * a storm; and the same server on `unixPath` (requests and upgrades handed to it).
 */
export async function listenLoopback(httpServer) {
  rmSync(unixPath, { force: true });
  const unixServer = createServer();
  unixServer.on('request', (req, res) => httpServer.emit('request', req, res));
  unixServer.on('upgrade', (req, socket, head) => httpServer.emit('upgrade', req, socket, head));
  await new Promise((resolve) => unixServer.listen(unixPath, resolve));
  process.once('exit', () => rmSync(unixPath, { force: true }));
  httpServer.once('close', () => unixServer.close());
  return new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
      resolve({ port: httpServer.address().port });
    });
  });
}
