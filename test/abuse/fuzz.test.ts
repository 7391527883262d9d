/**
 * A storm of ~25 000 malformed inputs against one live gateway, at three
 * layers: WebSocket frames at the byte level (after a valid handshake),
 * malformed JSON and app frames over valid connections, and malformed HTTP
 * upgrade requests. Meanwhile a control user receives events. Afterwards:
 * nothing escaped as an uncaught exception, the control user got every event
 * in order, the registry holds only what is open, and the heap is back near
 * its baseline.
 *
 * Inputs come from a seeded generator; set FUZZ_SEED to replay a storm.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handshakeServerOptions } from '../../src/gateway/harden-server.js';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';
import { MiB, settledHeapUsed } from '../helpers/heap.js';
import {
  clientFrame,
  RawWebSocket,
  upgradeHeaders,
  upgradeRequest,
} from '../helpers/raw-websocket.js';
import { TestClient } from '../helpers/test-client.js';
import { waitFor } from '../helpers/wait-for.js';

const SEED = Number(process.env.FUZZ_SEED ?? 7_3191);
const RAW_CONNECTIONS = 5000;
const APP_FRAMES = 15_000;
const HTTP_REQUESTS = 4000;
const PARALLEL = 25;

/** mulberry32: small, seeded, good enough to pick fuzz cases reproducibly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(SEED);
const int = (n: number): number => Math.floor(random() * n);
const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;
const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)));

interface BadFrame {
  bytes: () => Buffer;
  /** ws answers it with a close; otherwise (a frame cut short) the client leaves mid-frame. */
  answered: boolean;
}

/** One protocol violation at the frame level, as the bytes a client would send. */
const badFrames: readonly BadFrame[] = [
  {
    answered: true,
    bytes: () =>
      clientFrame({ opcode: pick([3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]), payload: 'x' }),
  },
  { answered: true, bytes: () => clientFrame({ opcode: 1, rsv: 1 + int(7), payload: '{}' }) },
  {
    answered: true,
    bytes: () => clientFrame({ opcode: 1, masked: false, payload: '{"type":"ping"}' }),
  },
  { answered: true, bytes: () => clientFrame({ opcode: 9, payload: bytes(126 + int(200)) }) },
  { answered: true, bytes: () => clientFrame({ opcode: 9, fin: false, payload: 'x' }) },
  {
    answered: true,
    bytes: () =>
      clientFrame({ opcode: 1, payload: Buffer.from([0x7b, 0xff, 0xfe, 0xc0, 0xaf, 0x7d]) }),
  },
  { answered: true, bytes: () => clientFrame({ opcode: 0, payload: 'orphan continuation' }) },
  {
    answered: true,
    bytes: () =>
      Buffer.concat([
        clientFrame({ opcode: 1, fin: false, payload: '{"ty' }),
        clientFrame({ opcode: 1, payload: 'new message mid-fragment' }),
      ]),
  },
  { answered: true, bytes: () => clientFrame({ opcode: 1, payload: 'x'.repeat(70_000) }) },
  {
    answered: true,
    bytes: () => clientFrame({ opcode: 2, payload: 'x', declaredLength: 2 ** 40 }).subarray(0, 14),
  },
  { answered: true, bytes: () => clientFrame({ opcode: 8, payload: Buffer.from([0x03]) }) },
  { answered: true, bytes: () => clientFrame({ opcode: 8, payload: Buffer.from([0x03, 0xe7]) }) },
  {
    answered: true,
    bytes: () => clientFrame({ opcode: 8, payload: Buffer.from([0x03, 0xe8, 0xff, 0xff]) }),
  },
  {
    answered: false,
    bytes: () => clientFrame({ opcode: 1, payload: 'short', declaredLength: 5000 }).subarray(0, 20),
  },
  { answered: false, bytes: () => bytes(1 + int(64)) },
  {
    answered: false,
    bytes: () => clientFrame({ opcode: 1, payload: '{"type":"ack"' }).subarray(0, 1 + int(8)),
  },
];

/** One malformed app frame (valid WebSocket, wrong content); each earns an error frame. */
const badAppFrames: readonly (() => string | Buffer)[] = [
  () => '{"type":"ack","seq":',
  () => 'not json at all',
  () => '',
  () => String(int(1000)),
  () => '"a string"',
  () => 'null',
  () => '[1,2,3]',
  () =>
    JSON.stringify({ type: pick(['subscribe', 'event', 'welcome', 'ACK', '', 'x'.repeat(300)]) }),
  () => JSON.stringify({ type: 'ack', seq: pick([-1, 1.5, '7', null, 1e300, 2 ** 60, {}]) }),
  () => JSON.stringify({ type: 'ack', seq: 1_000_000 + int(1000) }),
  () => JSON.stringify({ type: 'refresh', token: pick([42, null, ['a'], { jwt: 'x' }]) }),
  () => '{"type":"ack","seq":1,"__proto__":{"type":"ping"},"constructor":{"prototype":{}}}',
  () => `${'['.repeat(20_000)}${']'.repeat(20_000)}`,
  () => `{"type":"ping","pad":"${'\\u0000'.repeat(100)}"}`.replace('ping', 'pinG'),
  () => bytes(1 + int(100)),
];

/** One malformed upgrade request (or plain garbage), always with an end of head. */
function badHttpRequest(port: number, token: string): string | Buffer {
  const base = upgradeHeaders(`127.0.0.1:${port}`, token);
  const without = (name: string): Record<string, string> => {
    const copy = { ...base };
    delete copy[name];
    return copy;
  };
  switch (int(14)) {
    case 0:
      return upgradeRequest('/v1/ws', without('Sec-WebSocket-Key'));
    case 1:
      return upgradeRequest('/v1/ws', {
        ...base,
        'Sec-WebSocket-Version': pick(['7', '14', 'abc', '']), // ws also speaks 8 (hybi-08): not malformed,
      });
    case 2:
      return upgradeRequest('/v1/ws', { ...base, 'Sec-WebSocket-Key': pick(['short', '!!!', '']) });
    case 3:
      return upgradeRequest('/v1/ws', { ...base, Upgrade: pick(['h2c', 'websocket2', '']) });
    case 4:
      return upgradeRequest('/v1/ws', { ...base, Authorization: pick(['Bearer', 'Basic x', '']) });
    case 5:
      return upgradeRequest(
        pick(['/v1/ws?lastSeq=-1&epoch=e', '/v1/ws?%zz', '/v1/ws?access_token=x', '/v1/ws?epoch=']),
        base,
      );
    case 6:
      return `GET /v1/ws HTTP/1.1\r\nHost: x\r\nX-Bad: a\u0000b\r\n\r\n`;
    case 7:
      return upgradeRequest('/v1/ws', { ...base, 'X-Big': 'x'.repeat(20_000) });
    case 8:
      return `${pick(['GARBAGE', 'GET', 'G\u00e9T /', 'GET /v1/ws HTTP/9.9'])}\r\n\r\n`;
    case 9:
      return Buffer.concat([bytes(1 + int(200)), Buffer.from('\r\n\r\n')]);
    case 10:
      return `${upgradeRequest('/v1/ws', { ...base, 'Transfer-Encoding': 'chunked' })}zz\r\n`;
    case 11:
      return upgradeRequest('/v1/ws', { ...base, 'Content-Length': '-5' });
    case 12:
      return upgradeRequest('/v1/ws', {
        ...base,
        'Sec-WebSocket-Protocol': pick(['bearer.x, bearer.y', 'other', ',,,']),
      });
    default:
      return upgradeRequest('/v1/ws', { ...without('Authorization'), Connection: 'close' });
  }
}

async function inBatches(total: number, task: (i: number) => Promise<void>): Promise<void> {
  for (let start = 0; start < total; start += PARALLEL) {
    const batch = [];
    for (let i = start; i < Math.min(total, start + PARALLEL); i++) batch.push(task(i));
    await Promise.all(batch);
  }
}

let h: Harness;
const escaped: unknown[] = [];
const capture = (error: unknown): void => void escaped.push(error);

beforeAll(async () => {
  process.on('uncaughtException', capture);
  process.on('unhandledRejection', capture);
  h = await startGateway(
    {
      closeTimeoutMs: 500,
      limits: {
        handshakesPerIpPerSecond: 1_000_000,
        maxConnectionsPerUser: 1000,
        maxBadFrames: 50,
        frameBurst: 1000,
        framesPerSecond: 1000,
      },
    },
    { server: handshakeServerOptions(2000) },
  );
});
afterAll(async () => {
  process.off('uncaughtException', capture);
  process.off('unhandledRejection', capture);
  await h?.close();
});

describe('fuzz storm', () => {
  it('~25 000 malformed inputs: no crash, the control user gets everything in order, memory returns', async () => {
    const port = Number(new URL(h.wsUrl).port);
    const token = await h.token('fuzzer');
    const control = await h.connect('control', { autoAck: true });
    let published = 0;
    const publishes: Promise<unknown>[] = [];
    const tick = (): void => {
      const n = ++published;
      publishes.push(h.gateway.publish('control', { event: 'tick', data: { n } }));
    };
    const baseline = await settledHeapUsed();
    let inputs = 0;

    // (a) frames at the byte level: each connection gets one violation (ws
    // stops reading at the first), sometimes after a valid frame.
    await inBatches(RAW_CONNECTIONS, async (i) => {
      const raw = await RawWebSocket.upgrade(port, '/v1/ws', token);
      if (random() < 0.3) raw.write(clientFrame({ opcode: 1, payload: '{"type":"ping"}' }));
      const bad = pick(badFrames);
      raw.write(bad.bytes());
      inputs++;
      if (bad.answered) {
        await waitFor(() => raw.closeCode !== null || raw.ended, {
          timeoutMs: 10_000,
          what: 'the server to drop a violating socket',
        });
      }
      raw.destroy();
      if (i % 50 === 0) tick();
    });

    // (b) malformed app frames over valid connections: each earns an error
    // frame; past maxBadFrames the connection is closed with 1008 and replaced.
    let client = await TestClient.connect(h.wsUrl, { token });
    let sentOnClient = 0;
    let policyCloses = 0;
    for (let i = 0; i < APP_FRAMES; i++) {
      client.send((pick(badAppFrames) as () => string | Buffer)());
      sentOnClient++;
      inputs++;
      if (sentOnClient === 51) {
        // A generous deadline: the suite runs files side by side on 2 cores.
        const closed = await client.waitForClose(30_000);
        expect(closed.code).toBe(1008);
        expect(client.frames.filter((f) => f.type === 'error')).toHaveLength(50);
        policyCloses++;
        client = await TestClient.connect(h.wsUrl, { token });
        sentOnClient = 0;
        tick();
      }
    }
    client.terminate();

    // (c) malformed upgrade requests and HTTP garbage.
    await inBatches(HTTP_REQUESTS, async (i) => {
      const request = badHttpRequest(port, token);
      const raw = await RawWebSocket.open(port, request);
      inputs++;
      await waitFor(() => raw.status !== null || raw.ended, {
        timeoutMs: 10_000,
        what: 'an answer to a malformed request',
      });
      expect(raw.status, request.toString().slice(0, 400)).not.toBe(101);
      raw.destroy();
      if (i % 50 === 0) tick();
    });

    expect(inputs).toBeGreaterThanOrEqual(RAW_CONNECTIONS + APP_FRAMES + HTTP_REQUESTS);
    expect(policyCloses).toBeGreaterThan(200);

    await Promise.all(publishes);
    await control.waitForEvents(published, 10_000);
    expect(control.events().map((e) => (e.data as { n: number }).n)).toEqual(
      Array.from({ length: published }, (_, i) => i + 1),
    );
    expect(control.seqs()).toEqual(Array.from({ length: published }, (_, i) => i + 1));
    expect(control.closedWith).toBeNull();

    await waitFor(() => h.gateway.connectionCount === 1, {
      timeoutMs: 10_000,
      what: 'only the control connection left',
    });
    const after = await settledHeapUsed();
    expect(after - baseline).toBeLessThan(20 * MiB);
    expect(escaped).toEqual([]);
    // Still serving.
    const fresh = await h.connect('after-storm');
    expect((await fresh.welcome()).userId).toBe('after-storm');
  }, 180_000);
});
