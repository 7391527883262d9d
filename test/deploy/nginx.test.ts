/**
 * The gateway behind a real nginx, configured with the very block that
 * docs/deploy.md shows (extracted from it, so the two cannot drift): the
 * WebSocket upgrade, publish-and-wait, the client address with and without
 * `--trusted-proxies`, an AG-UI event stream (`POST /v1/ag-ui/runs`) passed on
 * while the run is open, and the drain on SIGTERM, all seen through the proxy.
 *
 * nginx reaches the gateway from 127.0.0.2 (`proxy_bind`, added by this test
 * around the documented block) and clients connect from 127.0.0.3, so the
 * proxy's address and the client's can be told apart on one machine.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiKeys } from '../../src/auth/api-keys.js';
import { mintDevToken } from '../../src/auth/dev-token.js';
import { startCliServer, type CliServer } from '../helpers/cli-process.js';
import { freePort } from '../helpers/free-port.js';
import { fencedBlocks } from '../helpers/markdown.js';
import { Nginx, nginxMissing } from '../helpers/nginx.js';
import { REPO_ROOT } from '../helpers/packed-package.js';
import { expectRefusal, TestClient } from '../helpers/test-client.js';
import { waitFor } from '../helpers/wait-for.js';

const SECRET = randomBytes(32).toString('base64url');
const API_KEY = ApiKeys.generate();
const ENV = { AGENTSOCKET_JWT_SECRET: SECRET, AGENTSOCKET_API_KEYS: API_KEY };
const PROXY_ADDRESS = '127.0.0.2';
const CLIENT_ADDRESS = '127.0.0.3';
const DOCUMENTED = fencedBlocks(readFileSync(join(REPO_ROOT, 'docs/deploy.md'), 'utf8'), 'nginx');

interface Stack {
  gateway: CliServer;
  proxy: Nginx;
  /** `ws://127.0.0.1:NGINX/v1/ws` */
  wsUrl: string;
}

let stacks: Stack[] = [];
afterEach(async () => {
  for (const { gateway, proxy } of stacks) {
    await proxy.stop();
    await gateway.stop('SIGKILL');
  }
  stacks = [];
});

/** The documented config with its two placeholders pointed at this test's ports. */
function documentedConfig(listenPort: number, gatewayPort: number): string {
  expect(DOCUMENTED).toHaveLength(1);
  const block = DOCUMENTED[0] as string;
  expect(block).toContain('listen 80;');
  expect(block).toContain('server 127.0.0.1:8080;');
  return block
    .replace('listen 80;', `listen 127.0.0.1:${listenPort};`)
    .replace('server 127.0.0.1:8080;', `server 127.0.0.1:${gatewayPort};`);
}

/** A gateway (the CLI, with `args`) and nginx in front of it. */
async function stack(args: string[] = []): Promise<Stack> {
  const gateway = await startCliServer(args, ENV);
  const port = await freePort();
  let proxy: Nginx;
  try {
    proxy = await Nginx.start({
      port,
      http: `proxy_bind ${PROXY_ADDRESS};\n${documentedConfig(port, Number(new URL(gateway.url).port))}`,
    });
  } catch (error) {
    await gateway.stop('SIGKILL');
    throw error;
  }
  const started = { gateway, proxy, wsUrl: `ws://127.0.0.1:${port}/v1/ws` };
  stacks.push(started);
  return started;
}

const token = (userId: string): Promise<string> =>
  mintDevToken({ secret: SECRET, userId, ttlSeconds: 600 });

function publish(base: string, userId: string, body: unknown, query = ''): Promise<Response> {
  return fetch(`${base}/v1/users/${userId}/events${query}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

async function remoteAddresses(base: string, userId: string): Promise<string[]> {
  const response = await fetch(`${base}/v1/users/${userId}/connections`, {
    headers: { authorization: `Bearer ${API_KEY}` },
  });
  expect(response.status).toBe(200);
  const { connections } = (await response.json()) as {
    connections: Array<{ remoteAddress: string }>;
  };
  return connections.map((connection) => connection.remoteAddress);
}

/**
 * `promise`, failing with `what` when it has not settled by waitFor's deadline
 * (a buffering proxy holds back even the headers of a stream).
 */
async function settled<T>(promise: Promise<T>, what: string): Promise<T> {
  let done = false;
  const settle = (): void => {
    done = true;
  };
  promise.then(settle, settle);
  await waitFor(() => done, { what });
  return promise;
}

interface SseEvent {
  type: string;
  [field: string]: unknown;
}

/**
 * Reads an SSE response in the background as its bytes arrive, so a test can
 * wait (with a deadline) for an event while the server still holds the
 * response open.
 */
function readSse(response: Response): {
  events(): SseEvent[];
  types(): string[];
  ended(): boolean;
} {
  let text = '';
  let ended = false;
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  void (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
    } catch {
      // Cut (nginx stopped after a failed test): nothing more arrives, and it did not end.
      return;
    }
    ended = true;
  })();
  // Complete events only: the last one may still be arriving.
  const events = (): SseEvent[] =>
    [...text.slice(0, text.lastIndexOf('\n\n') + 1).matchAll(/^data: (.*)$/gm)].map(
      (match) => JSON.parse(match[1] ?? 'null') as SseEvent,
    );
  return { events, types: () => events().map((event) => event.type), ended: () => ended };
}

describe.skipIf(nginxMissing)('behind nginx, as docs/deploy.md configures it', () => {
  it('upgrades a WebSocket: welcome, then an event published with ?wait= before it connected', async () => {
    const { proxy, wsUrl } = await stack();
    // Published first, through the proxy: it waits for alice's socket.
    const waiting = publish(
      proxy.url,
      'alice',
      { event: 'agent_started', runId: 'r1', data: { agent: 'a' } },
      '?wait=10000',
    );
    // Awaited below; handled now so a failed connect does not leave it unhandled.
    waiting.catch(() => undefined);
    const alice = await TestClient.connect(wsUrl, {
      token: await token('alice'),
      viaSubprotocol: true,
      autoAck: true,
    });
    expect(alice.ws.protocol).toBe('agentsocket.v1');
    const answer = await waiting;
    expect(answer.status).toBe(202);
    expect(await answer.json()).toMatchObject({ seq: 1, delivered: 1 });
    const [event] = await alice.waitForEvents(1);
    expect(event).toMatchObject({ event: 'agent_started', runId: 'r1', seq: 1 });
    // And one published after the connection, through the proxy too.
    expect((await publish(proxy.url, 'alice', { event: 'token', data: { t: 'hi' } })).status).toBe(
      202,
    );
    expect((await alice.waitForEvents(2))[1]).toMatchObject({ event: 'token', seq: 2 });
    alice.close();
  });

  it('believes X-Forwarded-For only with --trusted-proxies, and never a client-sent one', async () => {
    const trusting = await stack(['--trusted-proxies', PROXY_ADDRESS]);
    const plain = await stack();
    const spoofed = { 'x-forwarded-for': '203.0.113.9' };
    for (const { wsUrl } of [trusting, plain]) {
      await TestClient.connect(wsUrl, {
        token: await token('carol'),
        localAddress: CLIENT_ADDRESS,
        headers: spoofed,
      });
    }
    // Trusted proxy: the address nginx saw (it appends it to the client's header).
    expect(await remoteAddresses(trusting.proxy.url, 'carol')).toEqual([CLIENT_ADDRESS]);
    // Not trusted: the header is ignored, the peer is the proxy.
    expect(await remoteAddresses(plain.proxy.url, 'carol')).toEqual([PROXY_ADDRESS]);
    // Straight to the trusting gateway: the peer is not a trusted proxy, the header is ignored.
    await TestClient.connect(trusting.gateway.wsUrl, {
      token: await token('dave'),
      localAddress: CLIENT_ADDRESS,
      headers: spoofed,
    });
    expect(await remoteAddresses(trusting.gateway.url, 'dave')).toEqual([CLIENT_ADDRESS]);
  });

  it('streams an AG-UI run unbuffered: an event arrives through nginx while the run is still open', async () => {
    const { proxy } = await stack();
    const run = { runId: 'r-sse', threadId: 't-sse' };
    // Larger than nginx's proxy buffers, so even a proxy that buffers passes the
    // headers and RUN_STARTED on (in full buffers) and only holds back what follows.
    const question = { id: 'm-question', role: 'user', content: 'why? '.repeat(8 * 1024) };
    const started = { event: 'agent_started', ...run, data: { agent: 'a' } };
    expect((await publish(proxy.url, 'erin', started)).status).toBe(202);
    const answer = await settled(
      fetch(`${proxy.url}/v1/ag-ui/runs`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${await token('erin')}`,
          'content-type': 'application/json',
          accept: 'text/event-stream',
        },
        body: JSON.stringify({ ...run, state: {}, messages: [question], tools: [], context: [] }),
      }),
      'the response headers through nginx',
    );
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const stream = readSse(answer);
    await waitFor(() => stream.types().includes('RUN_STARTED'), {
      what: 'RUN_STARTED through nginx',
    });
    const thinking = { event: 'agent_thinking', ...run, data: { text: 'through nginx' } };
    expect((await publish(proxy.url, 'erin', thinking)).status).toBe(202);
    // The run is still open: a proxy that buffers holds this back until the response ends.
    await waitFor(
      () =>
        stream
          .events()
          .some(
            (event) =>
              event.type === 'REASONING_MESSAGE_CONTENT' && event.delta === 'through nginx',
          ),
      { what: 'the thinking delta through nginx before the run ends' },
    );
    expect(stream.ended()).toBe(false);
    const completed = { event: 'agent_completed', ...run, data: { status: 'succeeded' } };
    expect((await publish(proxy.url, 'erin', completed)).status).toBe(202);
    await waitFor(stream.ended, { what: 'the stream to end after agent_completed' });
    expect(stream.types().at(-1)).toBe('RUN_FINISHED');
  });

  it('carries a per-user SSE stream (GET /v1/sse) unbuffered, and its acks', async () => {
    const { proxy } = await stack();
    const issued = await fetch(`${proxy.url}/v1/tickets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await token('frank')}` },
    });
    expect(issued.status).toBe(201);
    const { ticket } = (await issued.json()) as { ticket: string };
    const answer = await settled(
      fetch(`${proxy.url}/v1/sse?ticket=${ticket}`, { headers: { accept: 'text/event-stream' } }),
      'the SSE response headers through nginx',
    );
    expect(answer.status).toBe(200);
    const stream = readSse(answer);
    await waitFor(() => stream.types()[0] === 'welcome', { what: 'the welcome through nginx' });
    const welcome = stream.events()[0] as unknown as { connectionId: string; ackKey: string };
    expect((await publish(proxy.url, 'frank', { event: 'note', data: 1 })).status).toBe(202);
    // The stream never ends on its own: a buffering proxy would hold this back.
    await waitFor(() => stream.types().includes('event'), { what: 'an event through nginx' });
    const acked = await fetch(`${proxy.url}/v1/sse/ack`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ connectionId: welcome.connectionId, ackKey: welcome.ackKey, seq: 1 }),
    });
    expect(acked.status).toBe(200);
    expect(stream.ended()).toBe(false);
    await answer.body?.cancel().catch(() => undefined);
  });

  it('drains on SIGTERM through the proxy: 503 for new handshakes, 1001 for open sockets', async () => {
    const { gateway, proxy, wsUrl } = await stack();
    const alice = await TestClient.connect(wsUrl, { token: await token('alice') });
    // A publish that waits for a user nobody connects as: it holds the drain open.
    const pending = publish(proxy.url, 'absent', { event: 'last-words' }, '?wait=5000');
    pending.catch(() => undefined); // awaited below
    await waitFor(
      async () => {
        const stats = await fetch(`${gateway.url}/v1/stats`, {
          headers: { authorization: `Bearer ${API_KEY}` },
        });
        return ((await stats.json()) as { events: { published: number } }).events.published === 1;
      },
      { what: 'the waiting publish to be accepted' },
    );
    gateway.child.kill('SIGTERM');
    await waitFor(async () => (await fetch(`${proxy.url}/readyz`)).status === 503, {
      what: '/readyz through nginx to answer 503',
    });
    const refused = await expectRefusal(wsUrl, { token: await token('latecomer') });
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('unavailable');
    const answer = await pending;
    expect(answer.status).toBe(202);
    expect((await alice.waitForClose(10_000)).code).toBe(1001);
    expect(await gateway.exited).toBe(0);
  });
});
