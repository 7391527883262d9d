/**
 * `agentsocket serve --redis`: two real server processes on one private
 * `redis-server` (never the one on 6379). A ticket issued by one node opens a
 * socket on the other, a publish to one node reaches a user connected to the
 * other, and a Redis outage answers 503 with `Retry-After` and fails `/readyz`.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeys } from '../../src/auth/api-keys.js';
import { mintDevToken } from '../../src/auth/dev-token.js';
import { startCliServer, type CliServer } from '../helpers/cli-process.js';
import { RedisServer, redisServerMissing } from '../helpers/redis-server.js';
import { TestClient } from '../helpers/test-client.js';
import { waitFor } from '../helpers/wait-for.js';

const SECRET = randomBytes(32).toString('base64url');
const API_KEY = ApiKeys.generate();

describe.skipIf(redisServerMissing)('serve --redis', () => {
  let redis: RedisServer;
  let nodes: CliServer[] = [];
  const handedOut: string[] = [SECRET, API_KEY];

  beforeAll(async () => {
    redis = await RedisServer.start();
    const env = {
      AGENTSOCKET_JWT_SECRET: SECRET,
      AGENTSOCKET_API_KEYS: API_KEY,
      AGENTSOCKET_REDIS_URL: redis.url,
    };
    nodes = await Promise.all([startCliServer([], env), startCliServer([], env)]);
    for (const node of nodes) {
      await waitFor(async () => (await fetch(`${node.url}/readyz`)).status === 200, {
        timeoutMs: 10_000,
        what: 'the node to be ready',
      });
    }
  });

  afterAll(async () => {
    for (const node of nodes) await node.stop('SIGKILL');
    await redis?.dispose();
    const logs = nodes.map((node) => node.stdout()).join('');
    for (const secret of handedOut) expect(logs).not.toContain(secret);
  });

  const post = (node: CliServer, path: string, body: unknown): Promise<Response> =>
    fetch(`${node.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('logs the engine without credentials', () => {
    const starting = nodes[0]?.logRecords().find((record) => record.msg === 'starting');
    expect(starting).toMatchObject({ engine: 'redis', redis: `redis://127.0.0.1:${redis.port}` });
  });

  it('reads, logs and exposes the Redis persistence (here none: unproven)', async () => {
    const [a] = nodes as [CliServer];
    const ready = (await (await fetch(`${a.url}/readyz`)).json()) as Record<string, unknown>;
    expect(ready).toMatchObject({
      ready: true,
      persistence: {
        proven: false,
        summary: expect.stringMatching(/^appendonly no, appendfsync everysec, save "".*new epoch/),
      },
    });
    const logged = a.logRecords().find((record) => /^redis persistence:/.test(String(record.msg)));
    expect(logged).toMatchObject({ level: 40, persistenceProven: false });
    await waitFor(
      async () => {
        const metrics = await fetch(`${a.url}/metrics`, {
          headers: { authorization: `Bearer ${API_KEY}` },
        });
        return /^agentsocket_redis_persistence_proven 0$/m.test(await metrics.text());
      },
      { what: 'the persistence gauge' },
    );
  });

  it('a ticket from node A opens a socket on node B; a publish on A reaches it', async () => {
    const [a, b] = nodes as [CliServer, CliServer];
    const jwt = await mintDevToken({ secret: SECRET, userId: 'roamer', ttlSeconds: 600 });
    handedOut.push(jwt);
    const issued = await fetch(`${a.url}/v1/tickets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${jwt}` },
    });
    expect(issued.status).toBe(201);
    const { ticket } = (await issued.json()) as { ticket: string };
    handedOut.push(ticket);
    const client = await TestClient.connect(b.wsUrl, { query: { ticket } });
    expect((await client.welcome()).userId).toBe('roamer');
    const answer = await post(a, '/v1/users/roamer/events?wait=5000', { event: 'hop' });
    expect(answer.status).toBe(202);
    expect(await answer.json()).toMatchObject({ seq: 1, delivered: 1 });
    expect((await client.waitForEvents(1))[0]).toMatchObject({ seq: 1, event: 'hop' });
    client.close();
  });

  it('two nodes racing two agent_completed of one run, 50 times: exactly one accepted each time', async () => {
    const [a, b] = nodes as [CliServer, CliServer];
    const end = { event: 'agent_completed', data: { status: 'succeeded' } };
    for (let i = 0; i < 50; i++) {
      const runId = `race-${i}`;
      const start = await post(a, '/v1/users/racer/events', {
        event: 'agent_started',
        runId,
        data: { agent: 'a' },
      });
      expect(start.status).toBe(202);
      const startSeq = ((await start.json()) as { seq: number }).seq;
      const answers = await Promise.all([
        post(a, '/v1/users/racer/events', { ...end, runId }),
        post(b, '/v1/users/racer/events', { ...end, runId }),
      ]);
      const statuses = answers.map((answer) => answer.status).sort();
      expect(statuses, runId).toEqual([202, 409]);
      const bodies = (await Promise.all(answers.map((answer) => answer.json()))) as {
        seq?: number;
        error?: { code: string };
      }[];
      const won = bodies.find((body) => body.seq !== undefined);
      const lost = bodies.find((body) => body.error !== undefined);
      expect(won?.seq, runId).toBe(startSeq + 1);
      expect(lost?.error?.code, runId).toBe('run_finished');
      // Both nodes read the same snapshot from the engine.
      const runs = await Promise.all(
        [a, b].map(async (node) =>
          (
            await fetch(`${node.url}/v1/users/racer/runs/${runId}`, {
              headers: { authorization: `Bearer ${API_KEY}` },
            })
          ).json(),
        ),
      );
      expect(runs[0]).toEqual(runs[1]);
      expect(runs[0]).toMatchObject({ run: { status: 'succeeded', upToSeq: startSeq + 1 } });
    }
  });

  it('a Redis outage answers 503 with Retry-After and makes /readyz 503', async () => {
    const [a] = nodes as [CliServer];
    await redis.kill();
    await waitFor(async () => (await fetch(`${a.url}/readyz`)).status === 503, {
      timeoutMs: 10_000,
      what: '/readyz to report the outage',
    });
    const ready = (await (await fetch(`${a.url}/readyz`)).json()) as { reasons: string[] };
    expect(ready.reasons.join(' ')).toMatch(/broker/);
    const answer = await post(a, '/v1/users/anyone/events', { event: 'lost' });
    expect(answer.status).toBe(503);
    expect(answer.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await answer.json()).toMatchObject({ error: { code: 'unavailable' } });
  });
});
