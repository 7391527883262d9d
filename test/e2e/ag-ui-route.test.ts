/**
 * `POST /v1/ag-ui/runs` over plain HTTP on 127.0.0.1: who may read which run,
 * the refusals before any byte of the stream, CORS, `?waitMs=`, the bounds on
 * streams, keep-alive comments, and the streams a gateway cannot carry on
 * (drain, a reader past the slow-consumer bound, an expired token) ending
 * with RUN_ERROR `agentsocket.stream_interrupted` rather than a silent close.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InProcessCluster } from '../../src/broker/in-process-cluster.js';
import { MemoryBroker } from '../../src/broker/memory-broker.js';
import type { JsonValue } from '../../src/protocol/frames.js';
import { gate, GatedBroker } from '../helpers/gated-broker.js';
import { AGUI_THREAD_ID, startAguiGateway, type AguiGateway } from '../helpers/agui-gateway.js';
import { waitFor } from '../helpers/wait-for.js';

const STARTED: readonly [string, JsonValue] = ['agent_started', { agent: 'demo' }];
const ORIGIN = 'http://app.test';

interface PostOptions {
  token?: string;
  authorization?: string;
  runId?: string;
  query?: string;
  headers?: Record<string, string>;
  body?: unknown;
}

async function post(gateway: AguiGateway, options: PostOptions): Promise<Response> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'text/event-stream',
    ...options.headers,
  };
  const authorization =
    options.authorization ?? (options.token !== undefined ? `Bearer ${options.token}` : undefined);
  if (authorization !== undefined) headers.authorization = authorization;
  const body = options.body ?? {
    threadId: AGUI_THREAD_ID,
    runId: options.runId ?? 'run-x',
    state: {},
    messages: [],
    tools: [],
    context: [],
    forwardedProps: {},
  };
  return fetch(`${gateway.runsUrl}${options.query ?? ''}`, {
    method: 'POST',
    headers,
    body: JSON.stringify(body),
  });
}

/** The `data:` events of an SSE text, parsed. */
function eventsOf(text: string): { type: string; [key: string]: unknown }[] {
  return [...text.matchAll(/^data: (.*)$/gm)].map(
    (match) => JSON.parse(match[1] ?? 'null') as { type: string },
  );
}

let gateway: AguiGateway;

beforeAll(async () => {
  gateway = await startAguiGateway({
    allowedOrigins: [ORIGIN],
    agui: { maxStreamsPerUser: 2, maxStreams: 3 },
  });
});
afterAll(async () => {
  await gateway.close();
});

describe('who may read a run', () => {
  it("answers 404 for another user's run exactly as for a missing one, before any byte", async () => {
    await gateway.publishRun('owner', 'run-private', [STARTED]);
    const intruder = await gateway.token('intruder');
    const theirs = await post(gateway, { token: intruder, runId: 'run-private' });
    const missing = await post(gateway, { token: intruder, runId: 'run-nobody' });
    expect(theirs.status).toBe(404);
    expect(missing.status).toBe(404);
    expect(theirs.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await theirs.json()).toEqual(await missing.json());
    // The owner reads it.
    const owner = await post(gateway, {
      token: await gateway.token('owner'),
      runId: 'run-private',
      query: '?waitMs=0',
    });
    expect(owner.status).toBe(200);
    expect(owner.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    await owner.body?.cancel();
  });

  it('answers 401 to an API key as bearer, and to no token', async () => {
    const asKey = await post(gateway, { authorization: `Bearer ${gateway.apiKey}` });
    expect(asKey.status).toBe(401);
    expect(((await asKey.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    const none = await post(gateway, {});
    expect(none.status).toBe(401);
  });

  it('answers 400 naming the field for a bad runId, waitMs or Last-Event-ID', async () => {
    const token = await gateway.token('carol');
    const cases: [PostOptions, string][] = [
      [{ body: { runId: 'has space' } }, 'runId'],
      [{ body: { runId: 'r', messages: [{ role: 'nobody' }] } }, 'messages[0]'],
      [{ query: '?waitMs=30001' }, 'waitMs'],
      [{ headers: { 'last-event-id': 'not a cursor' } }, 'Last-Event-ID'],
    ];
    for (const [options, field] of cases) {
      const answer = await post(gateway, { token, ...options });
      expect(answer.status, field).toBe(400);
      expect(((await answer.json()) as { error: { field: string } }).error.field).toBe(field);
    }
  });

  it('answers 400 for a cursor naming a part its event does not have', async () => {
    const token = await gateway.token('dave');
    const { epoch } = await gateway.gateway.publish('dave', {
      event: 'agent_started',
      runId: 'run-d',
      data: { agent: 'a' },
    });
    // Event 2 maps to TEXT_MESSAGE_START and TEXT_MESSAGE_CONTENT: parts 0 and 1 only.
    await gateway.publishRun('dave', 'run-d', [['agent_text', { text: 'Hi' }]]);
    const answer = await post(gateway, {
      token,
      runId: 'run-d',
      headers: { 'last-event-id': `${epoch}:2.5` },
    });
    if (answer.status !== 400) await answer.body?.cancel();
    expect(answer.status).toBe(400);
    expect(((await answer.json()) as { error: { field: string } }).error.field).toBe(
      'Last-Event-ID',
    );
  });
});

describe('CORS', () => {
  it('answers the preflight of an allowed origin with the headers an AG-UI client sends', async () => {
    const answer = await fetch(gateway.runsUrl, {
      method: 'OPTIONS',
      headers: {
        origin: ORIGIN,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type, last-event-id',
      },
    });
    expect(answer.status).toBe(204);
    expect(answer.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(answer.headers.get('access-control-allow-headers')).toBe(
      'Authorization, Content-Type, Accept, Last-Event-ID',
    );
    expect(answer.headers.get('access-control-allow-methods')).toBe('POST');
  });

  it('refuses another origin with 403 and echoes an allowed one on the stream', async () => {
    const token = await gateway.token('erin');
    await gateway.publishRun('erin', 'run-e', [
      STARTED,
      ['agent_completed', { status: 'succeeded' }],
    ]);
    const refused = await post(gateway, {
      token,
      runId: 'run-e',
      headers: { origin: 'http://evil.test' },
    });
    expect(refused.status).toBe(403);
    const allowed = await post(gateway, { token, runId: 'run-e', headers: { origin: ORIGIN } });
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(eventsOf(await allowed.text()).map((event) => event.type)).toEqual([
      'RUN_STARTED',
      'MESSAGES_SNAPSHOT',
      'RUN_FINISHED',
    ]);
  });
});

describe('?waitMs=', () => {
  it('waits for a run that starts during the wait, and answers 404 when none does', async () => {
    const token = await gateway.token('frank');
    const waiting = post(gateway, { token, runId: 'run-later', query: '?waitMs=10000' });
    await waitFor(() => gateway.gateway.aguiStreamCount > 0, { what: 'the request is waiting' });
    await gateway.publishRun('frank', 'run-later', [
      STARTED,
      ['agent_completed', { status: 'succeeded', result: 42 }],
    ]);
    const answer = await waiting;
    expect(answer.status).toBe(200);
    const events = eventsOf(await answer.text());
    expect(events.at(-1)).toMatchObject({ type: 'RUN_FINISHED', result: 42 });

    const started = performance.now();
    const never = await post(gateway, { token, runId: 'run-never', query: '?waitMs=150' });
    expect(never.status).toBe(404);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
  });
});

describe('a client leaving while its run is awaited', () => {
  it('gives the stream slot back at once, not at the end of waitMs', async () => {
    const token = await gateway.token('olga');
    const leaving = new AbortController();
    const waiting = fetch(`${gateway.runsUrl}?waitMs=30000`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ runId: 'run-someday' }),
      signal: leaving.signal,
    }).catch((error: unknown) => error);
    await waitFor(() => gateway.gateway.aguiStreamCount === 1, { what: 'the request waits' });
    leaving.abort();
    await waiting;
    await waitFor(() => gateway.gateway.aguiStreamCount === 0, {
      what: 'the slot given back',
      timeoutMs: 3000,
    });
  });
});

describe('bounds', () => {
  it("refuses a user's stream past maxStreamsPerUser (429) and any past maxStreams (503)", async () => {
    await waitFor(() => gateway.gateway.aguiStreamCount === 0, { what: 'no stream left open' });
    const open: Response[] = [];
    for (const user of ['gina', 'hank']) {
      await gateway.publishRun(user, 'run-open', [STARTED]);
    }
    const gina = await gateway.token('gina');
    const hank = await gateway.token('hank');
    open.push(await post(gateway, { token: gina, runId: 'run-open' }));
    open.push(await post(gateway, { token: gina, runId: 'run-open' }));
    expect(open.map((answer) => answer.status)).toEqual([200, 200]);
    const third = await post(gateway, { token: gina, runId: 'run-open' });
    expect(third.status).toBe(429);
    expect(((await third.json()) as { error: { code: string } }).error.code).toBe(
      'too_many_connections',
    );
    open.push(await post(gateway, { token: hank, runId: 'run-open' }));
    expect(open[2]?.status).toBe(200);
    const pastNode = await post(gateway, { token: hank, runId: 'run-open' });
    expect(pastNode.status).toBe(503);
    expect((await gateway.gateway.metrics.aguiStreams.get()).values[0]?.value).toBe(3);
    for (const answer of open) await answer.body?.cancel();
    await waitFor(() => gateway.gateway.aguiStreamCount === 0, { what: 'the streams released' });
    // Room again.
    const again = await post(gateway, { token: gina, runId: 'run-open' });
    expect(again.status).toBe(200);
    await again.body?.cancel();
  });
});

describe('streams the gateway cannot carry on', () => {
  it('sends keep-alive comments while a run is idle', async () => {
    const quick = await startAguiGateway({ agui: { keepAliveMs: 20 } });
    try {
      await quick.publishRun('ivy', 'run-idle', [STARTED]);
      const answer = await post(quick, { token: await quick.token('ivy'), runId: 'run-idle' });
      const reader = answer.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      await waitFor(
        async () => {
          const { value } = await reader.read();
          text += decoder.decode(value, { stream: true });
          return text.includes(': keep-alive\n\n');
        },
        { what: 'a keep-alive comment' },
      );
      await reader.cancel();
    } finally {
      await quick.close();
    }
  });

  it('ends every stream with RUN_ERROR stream_interrupted and the cursor to resume from on drain', async () => {
    const draining = await startAguiGateway({ agui: { coalesceWindowMs: 0 } });
    await draining.publishRun('jack', 'run-drain', [STARTED, ['agent_text', { text: 'Hel' }]]);
    const answer = await post(draining, {
      token: await draining.token('jack'),
      runId: 'run-drain',
    });
    const text = answer.text();
    await waitFor(() => draining.gateway.aguiStreamCount === 1, { what: 'the stream is open' });
    await draining.close();
    const events = eventsOf(await text);
    expect(events.at(-1)).toMatchObject({
      type: 'RUN_ERROR',
      code: 'agentsocket.stream_interrupted',
      metadata: { agentsocket: { interrupted: 'drain' } },
    });
    const cursor = (events.at(-1)?.metadata as { agentsocket: { cursor: string } }).agentsocket
      .cursor;
    // The last position the client got: the restated snapshot position (seq 2).
    expect(cursor).toMatch(/:2$/);
  });

  it('ends the stream of a reader past the slow-consumer bound, without holding the events', async () => {
    const slow = await startAguiGateway({ limits: { maxBufferedBytes: 64 * 1024 } });
    try {
      await slow.publishRun('kate', 'run-big', [STARTED]);
      const token = await slow.token('kate');
      // A reader that reads nothing: Node's http client, paused.
      const response = await new Promise<IncomingMessage>((resolve, reject) => {
        const req = httpRequest(slow.runsUrl, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        });
        req.on('response', resolve);
        req.on('error', reject);
        req.end(JSON.stringify({ runId: 'run-big', messages: [] }));
      });
      response.pause();
      expect(response.statusCode).toBe(200);
      const chunk = 'x'.repeat(200 * 1024);
      for (let i = 0; i < 200 && slow.gateway.aguiStreamCount > 0; i++) {
        await slow.gateway.publish('kate', {
          event: 'agent_text',
          runId: 'run-big',
          data: { text: chunk },
        });
      }
      expect(slow.gateway.aguiStreamCount).toBe(0);
      // What was written still reads, and ends with the interruption.
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (data: string) => (text += data));
      response.resume();
      await new Promise((resolve) => response.on('end', resolve));
      expect(eventsOf(text).at(-1)).toMatchObject({
        type: 'RUN_ERROR',
        code: 'agentsocket.stream_interrupted',
        metadata: { agentsocket: { interrupted: 'slow_consumer' } },
      });
      const interrupted = await slow.gateway.metrics.aguiInterrupted.get();
      expect(interrupted.values).toEqual([
        expect.objectContaining({ labels: { reason: 'slow_consumer' }, value: 1 }),
      ]);
      expect((await slow.gateway.metrics.aguiStreams.get()).values[0]?.value).toBe(0);
    } finally {
      await slow.close();
    }
  });

  it('ends a stream when its token expires', async () => {
    const expiring = await startAguiGateway({ leewaySeconds: 0 });
    try {
      await expiring.publishRun('liam', 'run-long', [STARTED]);
      // `exp` is in whole seconds: 1 s could leave a few ms, and a loaded
      // machine would then see the token expire before the request (401).
      const token = await expiring.token('liam', { expiresIn: 3 });
      const answer = await post(expiring, { token, runId: 'run-long' });
      expect(answer.status).toBe(200);
      const events = eventsOf(await answer.text());
      expect(events.at(-1)).toMatchObject({
        type: 'RUN_ERROR',
        code: 'agentsocket.stream_interrupted',
        metadata: { agentsocket: { interrupted: 'token_expired' } },
      });
    } finally {
      await expiring.close();
    }
  });
});

/** The text a stream's TEXT_MESSAGE_CONTENT events add up to. */
function textOf(events: { type: string; [key: string]: unknown }[]): string {
  return events
    .filter((event) => event.type === 'TEXT_MESSAGE_CONTENT')
    .map((event) => event.delta as string)
    .join('');
}

describe("following the user's live stream", () => {
  it('neither loses nor repeats an event when live events overflow the buffer held while the start is read', async () => {
    const broker = new GatedBroker();
    const gated = await startAguiGateway({ broker, limits: { maxReplayBuffer: 3 } });
    try {
      await gated.publishRun('mia', 'run-busy', [STARTED]);
      const held = gate();
      broker.historyGates.set('mia', held);
      const answer = post(gated, { token: await gated.token('mia'), runId: 'run-busy' });
      await waitFor(() => broker.waitingReads === 1, { what: 'the start is being read' });
      // Past the buffer of 3: what it dropped comes from history, what it kept is not repeated.
      const words = Array.from({ length: 12 }, (_, i) => `w${i} `);
      await gated.publishRun(
        'mia',
        'run-busy',
        words.map((text) => ['agent_text', { text }]),
      );
      broker.historyGates.delete('mia');
      held.open();
      const more = ['x ', 'y ', 'z'];
      await gated.publishRun('mia', 'run-busy', [
        ...more.map((text): [string, JsonValue] => ['agent_text', { text }]),
        ['agent_completed', { status: 'succeeded' }],
      ]);
      const events = eventsOf(await (await answer).text());
      expect(textOf(events)).toBe([...words, ...more].join(''));
      expect(events.at(-1)?.type).toBe('RUN_FINISHED');
    } finally {
      await gated.close();
      await broker.close();
    }
  });

  it('streams from a node of a cluster a run published on another node', async () => {
    const cluster = new InProcessCluster();
    const brokers = [
      new MemoryBroker({ cluster, nodeId: 'a' }),
      new MemoryBroker({ cluster, nodeId: 'b' }),
    ];
    const [a, b] = [
      await startAguiGateway({ broker: brokers[0] }),
      await startAguiGateway({ broker: brokers[1] }),
    ];
    try {
      await a.gateway.publish('noah', {
        event: 'agent_started',
        runId: 'run-c',
        data: { agent: 'x' },
      });
      const answer = post(b, { token: await b.token('noah'), runId: 'run-c' });
      await waitFor(() => b.gateway.aguiStreamCount === 1, { what: 'the stream on b' });
      await a.publishRun('noah', 'run-c', [
        ['agent_text', { text: 'from ' }],
        ['agent_text', { text: 'node a' }],
        ['agent_completed', { status: 'succeeded', result: 'ok' }],
      ]);
      const events = eventsOf(await (await answer).text());
      expect(textOf(events)).toBe('from node a');
      expect(events.at(-1)).toMatchObject({ type: 'RUN_FINISHED', result: 'ok' });
    } finally {
      await a.close();
      await b.close();
      for (const broker of brokers) await broker.close();
    }
  });
});
