/**
 * `client.runs`, `fetchRuns` and `run_snapshot` frames end to end: the SDK in
 * Node against the standalone server (the HTTP API and the WebSocket endpoint
 * on one port, in process, memory engine), publishing over the HTTP API with
 * an API key as a backend would. Every expectation compares what the SDK
 * folded with what was published: the reasoning and the answer byte for
 * byte, the tool calls and the status.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mintDevToken } from '../../src/auth/dev-token.js';
import { AgentSocketClient, RunsRequestError } from '../../src/client/index.js';
import type { AgentSocketClientOptions, RunSnapshot } from '../../src/client/index.js';
import type { RawFlags } from '../../src/options/option-spec.js';
import { parseServeConfig } from '../../src/server/config.js';
import { startServer, type RunningServer } from '../../src/server/standalone.js';
import { MapStorage } from '../helpers/map-storage.js';
import { waitFor } from '../helpers/wait-for.js';

const SECRET = 'client-runs-test-secret-0123456789-abcdef';
const API_KEY = 'client-runs-test-api-key-0123456789';

let server: RunningServer;
let wsUrl: string;
const clients: AgentSocketClient[] = [];
let users = 0;

function start(flags: RawFlags = {}): Promise<RunningServer> {
  const config = parseServeConfig(
    { logLevel: 'silent', heartbeatMs: '1s', ...flags },
    { AGENTSOCKET_JWT_SECRET: SECRET, AGENTSOCKET_API_KEYS: API_KEY },
  );
  return startServer({ ...config, port: 0, host: '127.0.0.1' });
}

beforeAll(async () => {
  server = await start();
  wsUrl = `${server.url.replace(/^http/, 'ws')}/v1/ws`;
});

afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

afterAll(async () => {
  await server?.close();
});

function newUser(): string {
  return `runs-user-${++users}`;
}

function client(userId: string, options: Partial<AgentSocketClientOptions> = {}) {
  const created = new AgentSocketClient({
    url: wsUrl,
    token: () => mintDevToken({ secret: SECRET, userId, ttlSeconds: 600 }),
    ...options,
  });
  clients.push(created);
  return created;
}

/** Publishes over the HTTP API, as a backend in any language would. */
async function publish(userId: string, body: Record<string, unknown>): Promise<number> {
  const res = await fetch(`${server.url}/v1/users/${userId}/events`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = (await res.json()) as { seq: number };
  expect(res.status, JSON.stringify(answer)).toBe(202);
  return answer.seq;
}

interface PublishedRun {
  thinking: string;
  answer: string;
}

/** A run in steps: `started`, `deltas(n)` of reasoning and answer, `finish()`. */
function runPublisher(userId: string, runId: string) {
  const published: PublishedRun = { thinking: '', answer: '' };
  return {
    published,
    started: () =>
      publish(userId, { event: 'agent_started', runId, data: { agent: 'a', input: 'Q?' } }),
    async thinking(count: number) {
      for (let i = 0; i < count; i++) {
        const text = `t${i} `;
        published.thinking += text;
        await publish(userId, { event: 'agent_thinking', runId, data: { text } });
      }
    },
    async tool() {
      await publish(userId, {
        event: 'tool_executing',
        runId,
        data: { toolCallId: 'c1', tool: 'search', args: { q: 'x' } },
      });
      await publish(userId, {
        event: 'tool_completed',
        runId,
        data: { toolCallId: 'c1', tool: 'search', result: { hits: 1 } },
      });
    },
    async answer(count: number) {
      for (let i = 0; i < count; i++) {
        const text = `a${i} `;
        published.answer += text;
        await publish(userId, { event: 'agent_text', runId, data: { text, messageId: 'm' } });
      }
    },
    finish: () =>
      publish(userId, { event: 'agent_completed', runId, data: { status: 'succeeded' } }),
  };
}

/** What a chat shows of a run: prompt, reasoning, tool calls, answer, status. */
function conversation(run: RunSnapshot | undefined) {
  if (run === undefined) return undefined;
  return {
    input: run.input,
    agent: run.agent,
    status: run.status,
    thinking: run.parts.flatMap((p) => (p.kind === 'reasoning' ? [p.text] : [])).join(''),
    answer: run.parts.flatMap((p) => (p.kind === 'text' ? [p.text] : [])).join(''),
    tools: run.parts.flatMap((p) => (p.kind === 'tool' ? [`${p.tool}:${p.status}`] : [])),
  };
}

describe('client.runs over a real gateway', () => {
  it('fetchRuns draws finished runs newest first; the live run folds as it streams', async () => {
    const user = newUser();
    const first = runPublisher(user, 'run-1');
    await first.started();
    await first.thinking(3);
    await first.tool();
    await first.answer(4);
    await first.finish();
    const second = runPublisher(user, 'run-2');
    await second.started();
    await second.thinking(2);

    const sdk = client(user);
    const fetched = await sdk.fetchRuns({ limit: 10 });
    expect(fetched.map((r) => r.runId)).toEqual(['run-2', 'run-1']);
    expect(conversation(sdk.runs.get('run-1'))).toEqual({
      input: 'Q?',
      agent: 'a',
      status: 'succeeded',
      thinking: first.published.thinking,
      answer: first.published.answer,
      tools: ['search:completed'],
    });
    const updates: string[] = [];
    sdk.on('run', (run) => updates.push(`${run.runId}@${run.upToSeq}`));
    await sdk.connect();
    await second.answer(3);
    await second.finish();
    await waitFor(() => sdk.runs.get('run-2')?.status === 'succeeded', { what: 'run-2 done' });
    expect(conversation(sdk.runs.get('run-2'))).toMatchObject({
      thinking: second.published.thinking,
      answer: second.published.answer,
      status: 'succeeded',
    });
    // Every update moved a run forward: nothing was folded twice.
    const seqs = updates.filter((u) => u.startsWith('run-2@')).map((u) => Number(u.split('@')[1]));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
  });

  it('a reload mid-run (stored cursor, fetchRuns, then connect) ends with the same run as a client that saw it all', async () => {
    const user = newUser();
    const run = runPublisher(user, 'run-r');
    const storage = new MapStorage();
    const watcher = client(user);
    await watcher.connect();
    const page = client(user, { storage });
    await page.connect();
    await run.started();
    await run.thinking(20);
    await waitFor(() => page.cursor?.lastSeq === 21, { what: 'the page at seq 21' });
    page.close();
    await run.tool();
    await run.answer(30);

    // The reloaded page: a new client on the same storage, runs first, then live.
    const reloaded = client(user, { storage });
    await reloaded.fetchRuns();
    await reloaded.connect();
    await run.answer(5);
    await run.finish();
    await waitFor(() => reloaded.runs.get('run-r')?.status === 'succeeded', { what: 'done' });
    await waitFor(() => watcher.runs.get('run-r')?.status === 'succeeded', { what: 'done' });
    expect(conversation(reloaded.runs.get('run-r'))).toEqual(
      conversation(watcher.runs.get('run-r')),
    );
    expect(conversation(reloaded.runs.get('run-r'))!.answer).toBe(run.published.answer);
  });

  it('asks for run snapshots by default (snapshots=1), and not when told so', async () => {
    const user = newUser();
    const urls: string[] = [];
    const { default: WebSocket } = await import('ws');
    class Recording extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        urls.push(url);
        super(url, protocols);
      }
    }
    await client(user, { WebSocket: Recording }).connect();
    await client(user, { WebSocket: Recording, snapshots: false }).connect();
    expect(new URL(urls[0]!).searchParams.get('snapshots')).toBe('1');
    expect(new URL(urls[1]!).searchParams.has('snapshots')).toBe(false);
  });

  it('gets one run_snapshot for a run whose start fell out of history, and its text whole', async () => {
    const small = await start({ historySize: '50' });
    try {
      const user = newUser();
      const url = `${small.url.replace(/^http/, 'ws')}/v1/ws`;
      const post = async (body: Record<string, unknown>) => {
        const res = await fetch(`${small.url}/v1/users/${user}/events`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
          body: JSON.stringify(body),
        });
        expect(res.status).toBe(202);
      };
      await post({ event: 'agent_started', runId: 'long', data: { agent: 'a', input: 'go' } });
      let text = '';
      for (let i = 0; i < 120; i++) {
        text += `d${i} `;
        await post({ event: 'agent_thinking', runId: 'long', data: { text: `d${i} ` } });
      }
      const sdk = client(user, { url });
      const snapshots: string[] = [];
      sdk.on('run', (run) => snapshots.push(run.runId));
      const welcome = await sdk.connect();
      expect(welcome.replay.runs).toEqual([{ runId: 'long', upToSeq: expect.any(Number) }]);
      await waitFor(() => sdk.runs.get('long')?.upToSeq === 121, { what: 'the whole run' });
      const run = sdk.runs.get('long')!;
      expect(run.agent).toBe('a');
      expect(conversation(run)!.thinking).toBe(text);
    } finally {
      await small.close();
    }
  });

  it('fetchRun reads one run; a bad token and a bad limit fail clearly', async () => {
    const user = newUser();
    const run = runPublisher(user, 'run-one');
    await run.started();
    const sdk = client(user);
    expect((await sdk.fetchRun('run-one'))!.runId).toBe('run-one');
    expect(await sdk.fetchRun('missing')).toBeNull();
    // Another user's run answers like a missing one.
    expect(await client(newUser()).fetchRun('run-one')).toBeNull();
    await expect(sdk.fetchRuns({ limit: 0 })).rejects.toThrow(RangeError);
    await expect(sdk.fetchRuns({ limit: 101 })).rejects.toThrow(RangeError);
    const forged = client(user, { token: 'not.a.jwt' });
    const error = await forged.fetchRuns().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RunsRequestError);
    expect((error as RunsRequestError).status).toBe(401);
    expect(String((error as RunsRequestError).message)).not.toContain('not.a.jwt');
  });

  it('takes the HTTP base from option httpUrl over the one derived from url', async () => {
    const user = newUser();
    await runPublisher(user, 'run-h').started();
    const wrongHost = client(user, { url: 'ws://127.0.0.1:1/v1/ws', httpUrl: server.url });
    expect((await wrongHost.fetchRuns()).map((r) => r.runId)).toEqual(['run-h']);
  });
});
