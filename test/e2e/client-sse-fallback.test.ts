/**
 * The client SDK's fallback to Server-Sent Events, in Node against a real
 * gateway with its HTTP API on 127.0.0.1: a WebSocket that cannot be
 * constructed sends the client to `GET /v1/sse`; it says so
 * (`client.transport`, the `transport` event), a run arrives whole, acks
 * reach the gateway by POST, and a stream cut by the server or by the
 * network resumes without gap or duplicate.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AgentSocketClient } from '../../src/client/index.js';
import type { TransportChange } from '../../src/client/client-types.js';
import type { WebSocketConstructorLike } from '../../src/client/websocket-like.js';
import { FALLBACK_AFTER_FAILED_OPENS } from '../../src/client/transport-chooser.js';
import { DEMO_RESULT, demoRun } from '../helpers/agent-run-events.js';
import { startAguiGateway, type AguiGateway } from '../helpers/agui-gateway.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { waitFor } from '../helpers/wait-for.js';

let g: AguiGateway | undefined;
let proxy: TcpProxy | undefined;
const clients: AgentSocketClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await proxy?.close();
  await g?.close();
  g = undefined;
  proxy = undefined;
});

/** A WebSocket constructor that always throws, as where WebSockets are forbidden. */
const ThrowingWebSocket = function () {
  throw new Error('WebSockets are disabled here');
} as unknown as WebSocketConstructorLike;

function client(gateway: AguiGateway, userId: string, url = gateway.wsUrl): AgentSocketClient {
  const c = new AgentSocketClient({
    url,
    token: () => gateway.token(userId),
    WebSocket: ThrowingWebSocket,
    backoff: () => 5,
  });
  clients.push(c);
  return c;
}

function seqsOf(c: AgentSocketClient): number[] {
  const seqs: number[] = [];
  c.on('event', (e) => seqs.push(e.seq));
  return seqs;
}

describe('client SDK: Server-Sent Events fallback', () => {
  it('falls back when the WebSocket constructor throws, says so, and receives a run whole with acks by POST', async () => {
    g = await startAguiGateway();
    const c = client(g, 'alice');
    const changes: TransportChange[] = [];
    c.on('transport', (change) => changes.push(change));
    const seqs = seqsOf(c);
    expect(c.transport).toBe('websocket');
    const welcome = await c.connect();
    expect(c.transport).toBe('sse');
    expect(changes).toEqual([{ transport: 'sse', reason: expect.stringContaining('threw') }]);
    expect(welcome.ackKey).toEqual(expect.any(String));
    expect(g.gateway.connections('alice')).toMatchObject([{ transport: 'sse', state: 'open' }]);

    const events = demoRun();
    await g.publishRun(
      'alice',
      'run-sse',
      events.map((e) => [e.event, e.data] as const),
    );
    await waitFor(() => c.runs.get('run-sse')?.status === 'succeeded', { what: 'the run' });
    const run = c.runs.get('run-sse')!;
    expect(run.completed).toMatchObject({ result: DEMO_RESULT });
    expect(run.parts).toEqual((await g.gateway.readRun('alice', 'run-sse'))!.parts);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    // The critical agent_completed is acked at once, through POST /v1/sse/ack.
    await waitFor(() => g!.gateway.connections('alice')[0]?.ackedSeq === events.length, {
      what: 'the acks of the run',
    });
  });

  it('resumes without gap or duplicate after an operator disconnect and after a network cut', async () => {
    g = await startAguiGateway();
    proxy = await TcpProxy.start(Number(new URL(g.httpUrl).port));
    const c = client(g, 'bob', `ws://127.0.0.1:${proxy.port}/v1/ws`);
    const seqs = seqsOf(c);
    const welcomes: string[] = [];
    c.on('welcome', (w) => welcomes.push(w.connectionId));
    await c.connect();
    const publish = async (from: number, to: number): Promise<void> => {
      for (let n = from; n <= to; n++) await g!.gateway.publish('bob', { event: 'note', data: n });
    };
    await publish(1, 5);
    await waitFor(() => seqs.length === 5);

    // The server ends the stream (close frame 4401): a new token, a new ticket, resume.
    const closed = await fetch(`${g.httpUrl}/v1/users/bob/connections`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${g.apiKey}` },
    });
    expect(await closed.json()).toEqual({ closed: 1 });
    await publish(6, 8);
    await waitFor(() => welcomes.length === 2 && seqs.length === 8, { what: 'resumed to 8' });

    // The network drops the stream: no close frame, a reconnect with backoff, resume.
    expect(proxy.cutAll()).toBeGreaterThan(0);
    await publish(9, 12);
    await waitFor(() => welcomes.length === 3 && seqs.length === 12, { what: 'resumed to 12' });
    expect(seqs).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(c.transport).toBe('sse');
    expect(g.gateway.connections('bob')).toHaveLength(1);
  });

  it(`falls back after ${FALLBACK_AFTER_FAILED_OPENS} WebSocket attempts that end before their welcome`, async () => {
    g = await startAguiGateway();
    // A WebSocket whose upgrade a proxy drops: it never opens and closes with 1006.
    let attempts = 0;
    const Blocked = class {
      readyState = 0;
      protocol = '';
      onopen: (() => void) | null = null;
      onmessage = null;
      onerror: ((e: unknown) => void) | null = null;
      onclose: ((e: { code: number; reason: string }) => void) | null = null;
      constructor() {
        attempts++;
        // The drop arrives from the network, on a later turn.
        setImmediate(() => this.onclose?.({ code: 1006, reason: '' }));
      }
      send(): void {}
      close(): void {}
    } as unknown as WebSocketConstructorLike;
    const c = new AgentSocketClient({
      url: g.wsUrl,
      token: () => g!.token('carol'),
      WebSocket: Blocked,
      backoff: () => 5,
    });
    clients.push(c);
    await c.connect();
    expect(attempts).toBe(FALLBACK_AFTER_FAILED_OPENS);
    expect(c.transport).toBe('sse');
  });
});
