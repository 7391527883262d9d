/**
 * docs/openapi.yaml against the code, both ways:
 *
 * - the document is valid OpenAPI 3.1 (a maintained validator), every schema
 *   in it compiles (ajv, draft 2020-12), docs/openapi.json is the YAML as
 *   JSON, and the node serves it at `GET /v1/openapi.json`;
 * - it describes exactly the routes the HTTP API registers (plus the
 *   WebSocket endpoint);
 * - real requests to real nodes (in-process standalone servers on 127.0.0.1,
 *   port 0; one on the memory engine, one whose Redis is unreachable) get
 *   answers the document describes: status, headers, content type and body
 *   schema, for every response of every operation; the last test fails when
 *   a documented response was never produced.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { parse as parseYaml } from 'yaml';
import { ApiKeys } from '../../src/auth/api-keys.js';
import { mintDevToken } from '../../src/auth/dev-token.js';
import {
  MAX_PUBLISH_WAIT_MS,
  createApiHandler,
  type ApiDependencies,
} from '../../src/http/api-routes.js';
import { Router } from '../../src/http/router.js';
import { EVENT_NAME_PATTERN } from '../../src/protocol/agent-events.js';
import { ERROR_CODES } from '../../src/protocol/error-codes.js';
import { REF_PATTERN } from '../../src/protocol/event-input.js';
import type { RawFlags } from '../../src/options/option-spec.js';
import { parseServeConfig } from '../../src/server/config.js';
import { startServer, type RunningServer } from '../../src/server/standalone.js';
import { waitFor } from '../helpers/wait-for.js';

const root = new URL('../../', import.meta.url);
const yamlText = readFileSync(new URL('docs/openapi.yaml', root), 'utf8');
// The document is plain JSON data; each helper below reads the parts it needs.
type Json = Record<string, unknown>;
const fileDocument = parseYaml(yamlText) as Json;

const SECRET = randomBytes(32).toString('base64url');
const API_KEY = ApiKeys.generate();
const ORIGIN = 'http://app.test';
const MAX_BATCH_EVENTS = 3;
const HTTP_METHODS = ['get', 'post', 'delete', 'options', 'put', 'patch', 'head'] as const;

/** Error codes that only `error` frames carry (docs/protocol.md, "Error codes"). */
const FRAME_ONLY_CODES = ['bad_frame', 'bad_ack'];

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

function at(document: Json, pointer: string): unknown {
  let node: unknown = document;
  for (const raw of pointer.replace(/^#\//, '').split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    node = (node as Json | undefined)?.[key];
  }
  return node;
}

/** Follows `$ref`s of response and header objects: the object and the pointer it lives at. */
function deref(document: Json, pointer: string): { node: Json; pointer: string } {
  let node = at(document, pointer) as Json | undefined;
  while (node && typeof node.$ref === 'string') {
    pointer = node.$ref;
    node = at(document, pointer) as Json | undefined;
  }
  if (!node) throw new Error(`nothing at ${pointer}`);
  return { node, pointer };
}

/** The operations of a document as `METHOD /path`. */
function operationsOf(document: Json): string[] {
  const paths = document.paths as Record<string, Json>;
  return Object.entries(paths).flatMap(([path, item]) =>
    HTTP_METHODS.filter((method) => item[method] !== undefined).map(
      (method) => `${method.toUpperCase()} ${path}`,
    ),
  );
}

/** Every `METHOD /path status` a document describes. */
function responsesOf(document: Json): string[] {
  return operationsOf(document).flatMap((operation) => {
    const [method = '', path = ''] = operation.split(' ');
    const responses = at(
      document,
      `#/paths/${escapePointer(path)}/${method.toLowerCase()}/responses`,
    ) as Json;
    return Object.keys(responses).map((status) => `${operation} ${status}`);
  });
}

interface Answer {
  status: number;
  header(name: string): string | null;
  body: string;
}

/** The documented operation a request was sent to, or the unmatched answers. */
type Target = { method: string; path: string } | 'unmatched';

class DocumentChecker {
  readonly covered = new Set<string>();
  // Strict about keywords (a misspelt one fails the compile instead of being
  // ignored), not about JSON Schema style (`required` of a property an `allOf`
  // defines).
  private readonly ajv = new Ajv2020({
    strict: true,
    strictTypes: false,
    strictRequired: false,
    allErrors: true,
  });

  constructor(readonly document: Json) {
    // The document's own fields, which sit around the schemas, and the OpenAPI schema keywords.
    this.ajv.addVocabulary([...Object.keys(document), 'example']);
    this.ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
    this.ajv.addSchema(document, 'openapi');
  }

  /** Validates `value` against the schema at `pointer`; the errors, or null. */
  errorsAt(pointer: string, value: unknown): string | null {
    const validate = this.ajv.getSchema(`openapi${pointer}`) ?? this.compile(pointer);
    return validate(value) ? null : this.ajv.errorsText(validate.errors);
  }

  private compile(pointer: string) {
    return this.ajv.compile({ $ref: `openapi${pointer}` });
  }

  requestBodyErrors(method: string, path: string, body: unknown): string | null {
    const pointer = `#/paths/${escapePointer(path)}/${method.toLowerCase()}/requestBody/content/application~1json/schema`;
    return this.errorsAt(pointer, body);
  }

  /** Checks an answer against the document: status, headers, content type and body. */
  check(target: Target, answer: Answer): void {
    const status = String(answer.status);
    const base =
      target === 'unmatched'
        ? `#/x-unmatched-responses/${status}`
        : `#/paths/${escapePointer(target.path)}/${target.method.toLowerCase()}/responses/${status}`;
    const label =
      target === 'unmatched' ? `unmatched ${status}` : `${target.method} ${target.path} ${status}`;
    expect(
      at(this.document, base),
      `${label} is not documented; body: ${answer.body}`,
    ).toBeDefined();
    const response = deref(this.document, base);

    const headers = (response.node.headers ?? {}) as Json;
    for (const name of Object.keys(headers)) {
      const header = deref(this.document, `${response.pointer}/headers/${escapePointer(name)}`);
      const value = answer.header(name);
      if (value === null) {
        expect(header.node.required === true, `${label}: header ${name} is required`).toBe(false);
        continue;
      }
      const schemaPointer = `${header.pointer}/schema`;
      const schema = deref(this.document, schemaPointer).node;
      const numeric = schema.type === 'integer' || schema.type === 'number';
      const typed = numeric && /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
      expect(this.errorsAt(schemaPointer, typed), `${label}: header ${name}: ${value}`).toBeNull();
    }

    const content = response.node.content as Json | undefined;
    if (content === undefined) {
      expect(answer.body, `${label} has no body`).toBe('');
    } else {
      const mediaType = (answer.header('content-type') ?? '').split(';')[0]?.trim() ?? '';
      expect(Object.keys(content), `${label}: content type`).toContain(mediaType);
      const schemaPointer = `${response.pointer}/content/${escapePointer(mediaType)}/schema`;
      // The document's general rule, for every answer with a body.
      expect(answer.header('cache-control'), `${label}: Cache-Control`).toBe('no-store');
      const body: unknown =
        mediaType === 'application/json' ? JSON.parse(answer.body) : answer.body;
      expect(this.errorsAt(schemaPointer, body), `${label}: body ${answer.body}`).toBeNull();
    }
    if (target !== 'unmatched') this.covered.add(label);
  }
}

async function fetchAnswer(url: string, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(url, init);
  const body = await response.text();
  return { status: response.status, header: (name) => response.headers.get(name), body };
}

/** A WebSocket handshake: the 101 or the refusal as an answer, and the socket (open after a 101). */
function handshake(
  url: string,
  options: { headers?: Record<string, string>; protocols?: string[] } = {},
): Promise<{ answer: Answer; socket: WebSocket }> {
  const socket = new WebSocket(url, options.protocols ?? [], { headers: options.headers });
  return new Promise((resolve, reject) => {
    const fromMessage = (res: IncomingMessage, body: string): Answer => ({
      status: res.statusCode ?? 0,
      header: (name) => {
        const value = res.headers[name.toLowerCase()];
        return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
      },
      body,
    });
    socket.once('upgrade', (res) => resolve({ answer: fromMessage(res, ''), socket }));
    socket.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ answer: fromMessage(res, body), socket }));
    });
    socket.once('error', reject);
  });
}

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function start(flags: RawFlags): Promise<RunningServer> {
  const config = parseServeConfig(
    { logLevel: 'silent', ...flags },
    { AGENTSOCKET_JWT_SECRET: SECRET, AGENTSOCKET_API_KEYS: API_KEY },
  );
  return startServer({ ...config, port: 0, host: '127.0.0.1' });
}

function token(userId: string): Promise<string> {
  return mintDevToken({ secret: SECRET, userId, ttlSeconds: 600 });
}

let main: RunningServer;
/** A node whose Redis engine is unreachable: what an outage answers. */
let down: RunningServer;
/** A node whose gateway is draining (`close()` of the gateway alone): the listener stays. */
let draining: RunningServer;
let checker: DocumentChecker;
let servedDocument: Json;

beforeAll(async () => {
  [main, down, draining] = await Promise.all([
    start({
      maxBatchEvents: String(MAX_BATCH_EVENTS),
      maxDataSize: '1KiB',
      maxBodySize: '4KiB',
      allowedOrigins: [ORIGIN],
      maxConnectionsPerUser: '1',
      maxPendingWaitsPerUser: '1',
    }),
    start({ redis: `redis://127.0.0.1:${await closedPort()}` }),
    start({}),
  ]);
  await draining.gateway.close();
  const served = await fetchAnswer(`${main.url}/v1/openapi.json`);
  expect(served.status).toBe(200);
  servedDocument = JSON.parse(served.body) as Json;
  // Responses are checked against what the node serves, which clients get.
  checker = new DocumentChecker(servedDocument);
});

afterAll(async () => {
  await Promise.all([main?.close(), down?.close(), draining?.close()]);
});

describe('the document', () => {
  it('is valid OpenAPI 3.1, and the validator refuses a broken copy', async () => {
    expect(fileDocument.openapi).toMatch(/^3\.1\./);
    const result = await new Validator().validate(structuredClone(fileDocument));
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);

    const broken = structuredClone(fileDocument);
    (at(broken, '#/paths/~1healthz/get') as Json).responses = 'none';
    expect((await new Validator().validate(broken)).valid).toBe(false);
  });

  it('compiles every schema it holds', () => {
    const schemas = Object.keys(at(fileDocument, '#/components/schemas') as Json);
    expect(schemas.length).toBeGreaterThan(20);
    const local = new DocumentChecker(structuredClone(fileDocument));
    for (const name of schemas) {
      expect(() => local.errorsAt(`#/components/schemas/${name}`, null), name).not.toThrow();
    }
  });

  it('is generated as docs/openapi.json (node scripts/openapi-json.mjs)', () => {
    const json = JSON.parse(readFileSync(new URL('docs/openapi.json', root), 'utf8')) as Json;
    expect(json, 'docs/openapi.json is stale: run node scripts/openapi-json.mjs').toEqual(
      fileDocument,
    );
  });

  it('is served at GET /v1/openapi.json with the node’s batch limit', () => {
    const expected = structuredClone(fileDocument);
    (at(expected, '#/components/schemas/BatchRequest/properties/events') as Json).maxItems =
      MAX_BATCH_EVENTS;
    expect(servedDocument).toEqual(expected);
    expect(at(fileDocument, '#/components/schemas/BatchRequest/properties/events/maxItems')).toBe(
      1000,
    );
  });

  it('carries the package version', () => {
    const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as Json;
    expect((fileDocument.info as Json).version).toBe(pkg.version);
  });

  it('lists every error code an HTTP answer can carry', () => {
    const codes = Object.keys(ERROR_CODES).filter((code) => !FRAME_ONLY_CODES.includes(code));
    expect(at(fileDocument, '#/components/schemas/ErrorCode/enum')).toEqual(codes);
  });

  it('gives the patterns and bounds of the code', () => {
    const schema = (name: string): Json => at(fileDocument, `#/components/schemas/${name}`) as Json;
    expect(schema('EventName').pattern).toBe(EVENT_NAME_PATTERN.source);
    expect(schema('Ref').pattern).toBe(REF_PATTERN.source);
    const parameters = at(fileDocument, `#/paths/${escapePointer(PUBLISH)}/post/parameters`);
    const wait = (parameters as Json[]).find((parameter) => parameter.name === 'wait');
    expect((wait?.schema as Json).maximum).toBe(MAX_PUBLISH_WAIT_MS);
  });

  it('describes exactly the routes the HTTP API registers, and the WebSocket endpoint', () => {
    const on = vi.spyOn(Router.prototype, 'on');
    try {
      // Routes are registered when the handler is built; no handler runs here.
      createApiHandler({} as unknown as ApiDependencies);
      const registered = on.mock.calls.map(([method, template]) => `${method} ${template}`);
      expect(registered.length).toBeGreaterThanOrEqual(12);
      const expected = [...registered, `GET ${main.gateway.options.path}`];
      expect([...operationsOf(fileDocument)].sort()).toEqual(expected.sort());
    } finally {
      on.mockRestore();
    }
  });
});

interface Case {
  name: string;
  method: string;
  /** The documented path template. */
  path: string;
  /** The path and query actually requested. */
  url: string;
  server?: 'main' | 'down' | 'draining';
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
  /** `Authorization: Bearer <api-key>` unless null or overridden in `headers`. */
  key?: null;
  status: number;
  code?: string;
  field?: string;
  /** What the answer's JSON body must contain (`toMatchObject`). */
  answer?: Json;
  /** Whether the document's request schema accepts `body` (checked when set). */
  bodyIsValid?: boolean;
}

const PUBLISH = '/v1/users/{userId}/events';
const CONNECTIONS = '/v1/users/{userId}/connections';
const USER_RUN = '/v1/users/{userId}/runs/{runId}';
const MY_RUN = '/v1/runs/{runId}';
const EVENT = { event: 'order.shipped', data: { orderId: 'o-17' } };
const JSON_TYPE = { 'content-type': 'application/json' };

const cases: Case[] = [
  // POST /v1/users/{userId}/events
  {
    name: 'publishes',
    method: 'POST',
    path: PUBLISH,
    url: '/v1/users/alice/events',
    body: EVENT,
    status: 202,
    bodyIsValid: true,
  },
  {
    name: 'publishes an agent event with wait',
    method: 'POST',
    path: PUBLISH,
    url: '/v1/users/alice/events?wait=1',
    body: { event: 'agent_started', runId: 'run-1', id: 'run-1-start', data: { agent: 'a' } },
    status: 202,
    bodyIsValid: true,
  },
  {
    name: 'refuses an event that breaks the run grammar with 409 and the rule',
    method: 'POST',
    path: PUBLISH,
    url: '/v1/users/alice/events',
    body: { event: 'tool_completed', runId: 'never-started', data: { toolCallId: 'c', tool: 't' } },
    status: 409,
    code: 'run_not_started',
    bodyIsValid: true,
  },
  {
    name: 'refuses a bad user id',
    method: 'POST',
    path: PUBLISH,
    url: '/v1/users/bad%20user/events',
    body: EVENT,
    status: 400,
    code: 'bad_request',
    field: 'userId',
  },
  {
    name: 'refuses a wait over 30 s',
    method: 'POST',
    path: PUBLISH,
    url: '/v1/users/alice/events?wait=30001',
    body: EVENT,
    status: 400,
    field: 'wait',
  },
  {
    name: 'refuses a credential in the query',
    method: 'POST',
    path: PUBLISH,
    url: '/v1/users/alice/events?token=x',
    body: EVENT,
    status: 400,
    field: 'token',
  },
  {
    name: 'refuses invalid JSON',
    method: 'POST',
    path: PUBLISH,
    url: '/v1/users/alice/events',
    rawBody: '{',
    headers: JSON_TYPE,
    status: 400,
    field: 'body',
  },
  {
    name: 'refuses an agent event without runId',
    method: 'POST',
    path: PUBLISH,
    url: '/v1/users/alice/events',
    body: { event: 'agent_started', data: { agent: 'a' } },
    status: 400,
    field: 'runId',
    bodyIsValid: false,
  },
  {
    name: 'refuses a bad agent_completed status',
    method: 'POST',
    path: PUBLISH,
    url: '/v1/users/alice/events',
    body: { event: 'agent_completed', runId: 'r', data: { status: 'done' } },
    status: 400,
    field: 'data.status',
    bodyIsValid: false,
  },
  {
    name: 'refuses an unknown field',
    method: 'POST',
    path: PUBLISH,
    url: '/v1/users/alice/events',
    body: { ...EVENT, extra: 1 },
    status: 400,
    field: 'extra',
    bodyIsValid: false,
  },
  {
    name: 'refuses a reserved id',
    method: 'POST',
    path: PUBLISH,
    url: '/v1/users/alice/events',
    body: { ...EVENT, id: 'ev_1' },
    status: 400,
    field: 'id',
    bodyIsValid: false,
  },
  {
    name: 'refuses a missing API key',
    method: 'POST',
    path: PUBLISH,
    url: '/v1/users/alice/events',
    body: EVENT,
    key: null,
    status: 401,
    code: 'unauthorized',
  },
  {
    name: 'refuses data over the limit',
    method: 'POST',
    path: PUBLISH,
    url: '/v1/users/alice/events',
    body: { event: 'x', data: 'd'.repeat(2000) },
    status: 413,
    code: 'payload_too_large',
    field: 'data',
  },
  {
    name: 'refuses a body over the limit',
    method: 'POST',
    path: PUBLISH,
    url: '/v1/users/alice/events',
    rawBody: JSON.stringify({ event: 'x', data: 'd'.repeat(5000) }),
    headers: JSON_TYPE,
    status: 413,
    field: 'body',
  },
  {
    name: 'refuses a body that is not JSON',
    method: 'POST',
    path: PUBLISH,
    url: '/v1/users/alice/events',
    rawBody: 'event=x',
    headers: { 'content-type': 'text/plain' },
    status: 415,
    code: 'unsupported_media_type',
    field: 'content-type',
  },
  {
    name: 'answers 503 when the engine is down',
    server: 'down',
    method: 'POST',
    path: PUBLISH,
    url: '/v1/users/alice/events',
    body: EVENT,
    status: 503,
    code: 'unavailable',
  },
  {
    name: 'answers 503 while the node drains',
    server: 'draining',
    method: 'POST',
    path: PUBLISH,
    url: '/v1/users/alice/events',
    body: EVENT,
    status: 503,
    code: 'unavailable',
  },

  // POST /v1/events
  {
    name: 'publishes a batch',
    method: 'POST',
    path: '/v1/events',
    url: '/v1/events',
    body: {
      events: [
        { userId: 'alice', ...EVENT },
        { userId: 'bob', event: 'x' },
      ],
    },
    status: 202,
    bodyIsValid: true,
  },
  {
    name: 'refuses a batch over the node’s limit',
    method: 'POST',
    path: '/v1/events',
    url: '/v1/events',
    body: {
      events: Array.from({ length: MAX_BATCH_EVENTS + 1 }, () => ({ userId: 'a', event: 'x' })),
    },
    status: 400,
    field: 'events',
    bodyIsValid: false,
  },
  {
    name: 'refuses a batch item with a bad user id',
    method: 'POST',
    path: '/v1/events',
    url: '/v1/events',
    body: {
      events: [
        { userId: 'alice', event: 'x' },
        { userId: 'a b', event: 'x' },
      ],
    },
    status: 400,
    field: 'events[1].userId',
    bodyIsValid: false,
  },
  {
    name: 'refuses a batch without API key',
    method: 'POST',
    path: '/v1/events',
    url: '/v1/events',
    body: { events: [] },
    key: null,
    status: 401,
  },
  {
    name: 'refuses a batch item with data over the limit',
    method: 'POST',
    path: '/v1/events',
    url: '/v1/events',
    body: { events: [{ userId: 'a', event: 'x', data: 'd'.repeat(2000) }] },
    status: 413,
    field: 'events[0].data',
  },
  {
    name: 'refuses a batch that is not JSON',
    method: 'POST',
    path: '/v1/events',
    url: '/v1/events',
    rawBody: 'x',
    headers: { 'content-type': 'text/csv' },
    status: 415,
  },
  {
    name: 'answers a batch item the engine could not store with an error in its slot',
    server: 'down',
    method: 'POST',
    path: '/v1/events',
    url: '/v1/events',
    body: { events: [{ userId: 'alice', event: 'x' }] },
    status: 202,
    answer: { results: [{ error: { code: 'unavailable' } }] },
  },
  {
    name: 'answers a batch item that breaks the run grammar in its slot, the others in order',
    method: 'POST',
    path: '/v1/events',
    url: '/v1/events',
    body: {
      events: [
        { userId: 'batcher', event: 'agent_started', runId: 'b1', data: { agent: 'a' } },
        { userId: 'batcher', event: 'agent_started', runId: 'b1', data: { agent: 'a' } },
        { userId: 'batcher', event: 'agent_completed', runId: 'b1', data: { status: 'succeeded' } },
      ],
    },
    status: 202,
    answer: { results: [{ seq: 1 }, { error: { code: 'run_already_started' } }, { seq: 2 }] },
  },
  {
    name: 'answers a batch with 503 while the node drains',
    server: 'draining',
    method: 'POST',
    path: '/v1/events',
    url: '/v1/events',
    body: { events: [{ userId: 'alice', event: 'x' }] },
    status: 503,
  },

  // POST /v1/broadcast
  {
    name: 'broadcasts',
    method: 'POST',
    path: '/v1/broadcast',
    url: '/v1/broadcast',
    body: { event: 'maintenance', data: { in: 60 } },
    status: 202,
    bodyIsValid: true,
  },
  {
    name: 'refuses a bad event name',
    method: 'POST',
    path: '/v1/broadcast',
    url: '/v1/broadcast',
    body: { event: 'Bad Name' },
    status: 400,
    field: 'event',
    bodyIsValid: false,
  },
  {
    name: 'refuses a broadcast without API key',
    method: 'POST',
    path: '/v1/broadcast',
    url: '/v1/broadcast',
    body: { event: 'x' },
    key: null,
    status: 401,
  },
  {
    name: 'refuses broadcast data over the limit',
    method: 'POST',
    path: '/v1/broadcast',
    url: '/v1/broadcast',
    body: { event: 'x', data: 'd'.repeat(2000) },
    status: 413,
    field: 'data',
  },
  {
    name: 'refuses a broadcast that is not JSON',
    method: 'POST',
    path: '/v1/broadcast',
    url: '/v1/broadcast',
    rawBody: 'x',
    headers: { 'content-type': 'text/plain' },
    status: 415,
  },
  {
    name: 'answers a broadcast with 503 when the engine is down',
    server: 'down',
    method: 'POST',
    path: '/v1/broadcast',
    url: '/v1/broadcast',
    body: { event: 'x' },
    status: 503,
  },

  // GET and DELETE /v1/users/{userId}/connections
  {
    name: 'lists connections',
    method: 'GET',
    path: CONNECTIONS,
    url: '/v1/users/alice/connections',
    status: 200,
  },
  {
    name: 'refuses listing for a user id too long',
    method: 'GET',
    path: CONNECTIONS,
    url: `/v1/users/${'u'.repeat(129)}/connections`,
    status: 400,
    field: 'userId',
  },
  {
    name: 'refuses listing without API key',
    method: 'GET',
    path: CONNECTIONS,
    url: '/v1/users/alice/connections',
    key: null,
    status: 401,
  },
  {
    name: 'answers listing with 503 when the engine is down',
    server: 'down',
    method: 'GET',
    path: CONNECTIONS,
    url: '/v1/users/alice/connections',
    status: 503,
  },
  {
    name: 'disconnects',
    method: 'DELETE',
    path: CONNECTIONS,
    url: '/v1/users/alice/connections',
    status: 200,
  },
  {
    name: 'refuses disconnecting a bad user id',
    method: 'DELETE',
    path: CONNECTIONS,
    url: '/v1/users/a%2Fb/connections',
    status: 400,
    field: 'userId',
  },
  {
    name: 'refuses disconnecting without API key',
    method: 'DELETE',
    path: CONNECTIONS,
    url: '/v1/users/alice/connections',
    key: null,
    status: 401,
  },
  {
    name: 'answers disconnecting with 503 when the engine is down',
    server: 'down',
    method: 'DELETE',
    path: CONNECTIONS,
    url: '/v1/users/alice/connections',
    status: 503,
  },

  // GET /v1/users/{userId}/runs/{runId} (the 200 is below: it publishes first)
  {
    name: 'answers an unknown run with 404',
    method: 'GET',
    path: USER_RUN,
    url: '/v1/users/alice/runs/no-such-run',
    status: 404,
    code: 'not_found',
  },
  {
    name: 'refuses a run of a bad user id',
    method: 'GET',
    path: USER_RUN,
    url: '/v1/users/bad%20user/runs/r1',
    status: 400,
    field: 'userId',
  },
  {
    name: 'refuses a bad run id',
    method: 'GET',
    path: USER_RUN,
    url: '/v1/users/alice/runs/bad%20run',
    status: 400,
    field: 'runId',
  },
  {
    name: 'refuses a run without API key',
    method: 'GET',
    path: USER_RUN,
    url: '/v1/users/alice/runs/r1',
    key: null,
    status: 401,
  },
  {
    name: 'answers a run with 503 when the engine is down',
    server: 'down',
    method: 'GET',
    path: USER_RUN,
    url: '/v1/users/alice/runs/r1',
    status: 503,
  },

  // GET and OPTIONS /v1/runs/{runId} and /v1/runs (the token cases are below)
  {
    name: 'refuses an API key for a run of the token user',
    method: 'GET',
    path: MY_RUN,
    url: '/v1/runs/r1',
    headers: { origin: ORIGIN },
    status: 401,
  },
  {
    name: 'refuses a run of the token user from another origin',
    method: 'GET',
    path: MY_RUN,
    url: '/v1/runs/r1',
    key: null,
    headers: { origin: 'http://evil.test' },
    status: 403,
    field: 'origin',
  },
  {
    name: 'refuses a run of the token user with a token in the query',
    method: 'GET',
    path: MY_RUN,
    url: '/v1/runs/r1?access_token=x',
    key: null,
    status: 400,
    field: 'access_token',
  },
  {
    name: 'answers the preflight of a run',
    method: 'OPTIONS',
    path: MY_RUN,
    url: '/v1/runs/r1',
    key: null,
    headers: { origin: ORIGIN },
    status: 204,
  },
  {
    name: 'refuses the preflight of a run from another origin',
    method: 'OPTIONS',
    path: MY_RUN,
    url: '/v1/runs/r1',
    key: null,
    headers: { origin: 'http://evil.test' },
    status: 403,
  },
  {
    name: 'refuses the preflight of a run with a token in the query',
    method: 'OPTIONS',
    path: MY_RUN,
    url: '/v1/runs/r1?token=x',
    key: null,
    status: 400,
    field: 'token',
  },
  {
    name: 'refuses the runs list without a user token',
    method: 'GET',
    path: '/v1/runs',
    url: '/v1/runs',
    key: null,
    status: 401,
  },
  {
    name: 'refuses the runs list from another origin',
    method: 'GET',
    path: '/v1/runs',
    url: '/v1/runs',
    key: null,
    headers: { origin: 'http://evil.test' },
    status: 403,
  },
  {
    name: 'refuses the runs list with a key in the query',
    method: 'GET',
    path: '/v1/runs',
    url: '/v1/runs?api_key=x',
    key: null,
    status: 400,
    field: 'api_key',
  },
  {
    name: 'answers the preflight of the runs list',
    method: 'OPTIONS',
    path: '/v1/runs',
    url: '/v1/runs',
    key: null,
    headers: { origin: ORIGIN },
    status: 204,
  },
  {
    name: 'refuses the preflight of the runs list from another origin',
    method: 'OPTIONS',
    path: '/v1/runs',
    url: '/v1/runs',
    key: null,
    headers: { origin: 'http://evil.test' },
    status: 403,
  },
  {
    name: 'refuses the preflight of the runs list with a token in the query',
    method: 'OPTIONS',
    path: '/v1/runs',
    url: '/v1/runs?token=x',
    key: null,
    status: 400,
    field: 'token',
  },

  // GET /v1/stats, /healthz, /readyz, /metrics, /v1/openapi.json
  { name: 'answers stats', method: 'GET', path: '/v1/stats', url: '/v1/stats', status: 200 },
  {
    name: 'refuses stats with a key in the query',
    method: 'GET',
    path: '/v1/stats',
    url: '/v1/stats?api_key=x',
    status: 400,
    field: 'api_key',
  },
  {
    name: 'refuses stats without API key',
    method: 'GET',
    path: '/v1/stats',
    url: '/v1/stats',
    key: null,
    status: 401,
  },
  {
    name: 'answers healthz',
    method: 'GET',
    path: '/healthz',
    url: '/healthz',
    key: null,
    status: 200,
  },
  {
    name: 'refuses healthz with a token in the query',
    method: 'GET',
    path: '/healthz',
    url: '/healthz?access_token=x',
    key: null,
    status: 400,
    field: 'access_token',
  },
  {
    name: 'answers readyz',
    method: 'GET',
    path: '/readyz',
    url: '/readyz',
    key: null,
    status: 200,
  },
  {
    name: 'refuses readyz with a key in the query',
    method: 'GET',
    path: '/readyz',
    url: '/readyz?key=x',
    key: null,
    status: 400,
    field: 'key',
  },
  {
    name: 'answers readyz 503 when the engine is down',
    server: 'down',
    method: 'GET',
    path: '/readyz',
    url: '/readyz',
    key: null,
    status: 503,
  },
  { name: 'answers metrics', method: 'GET', path: '/metrics', url: '/metrics', status: 200 },
  {
    name: 'refuses metrics with a key in the query',
    method: 'GET',
    path: '/metrics',
    url: '/metrics?apikey=x',
    status: 400,
    field: 'apikey',
  },
  {
    name: 'refuses metrics without API key',
    method: 'GET',
    path: '/metrics',
    url: '/metrics',
    key: null,
    status: 401,
  },
  {
    name: 'serves the document',
    method: 'GET',
    path: '/v1/openapi.json',
    url: '/v1/openapi.json',
    key: null,
    status: 200,
  },
  {
    name: 'refuses the document with a ticket in the query',
    method: 'GET',
    path: '/v1/openapi.json',
    url: '/v1/openapi.json?ticket=x',
    key: null,
    status: 400,
    field: 'ticket',
  },

  // OPTIONS and POST /v1/tickets (the token is added by the test)
  {
    name: 'answers the preflight',
    method: 'OPTIONS',
    path: '/v1/tickets',
    url: '/v1/tickets',
    key: null,
    headers: { origin: ORIGIN },
    status: 204,
  },
  {
    name: 'refuses a preflight with a token in the query',
    method: 'OPTIONS',
    path: '/v1/tickets',
    url: '/v1/tickets?token=x',
    key: null,
    status: 400,
    field: 'token',
  },
  {
    name: 'refuses a preflight from another origin',
    method: 'OPTIONS',
    path: '/v1/tickets',
    url: '/v1/tickets',
    key: null,
    headers: { origin: 'http://evil.test' },
    status: 403,
    code: 'forbidden',
    field: 'origin',
  },
  {
    name: 'refuses an API key for a ticket',
    method: 'POST',
    path: '/v1/tickets',
    url: '/v1/tickets',
    headers: { origin: ORIGIN },
    status: 401,
  },
  {
    name: 'refuses a ticket without token',
    method: 'POST',
    path: '/v1/tickets',
    url: '/v1/tickets',
    key: null,
    status: 401,
  },
  {
    name: 'refuses a ticket with a ticket in the query',
    method: 'POST',
    path: '/v1/tickets',
    url: '/v1/tickets?ticket=abc',
    key: null,
    status: 400,
    field: 'ticket',
  },
  {
    name: 'refuses a ticket from another origin',
    method: 'POST',
    path: '/v1/tickets',
    url: '/v1/tickets',
    key: null,
    headers: { origin: 'http://evil.test' },
    status: 403,
    field: 'origin',
  },
];

async function send(test: Case): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (test.key !== null) headers.authorization = `Bearer ${API_KEY}`;
  Object.assign(headers, test.headers);
  let body = test.rawBody;
  if (test.body !== undefined) {
    body = JSON.stringify(test.body);
    headers['content-type'] ??= 'application/json';
  }
  const server = { main, down, draining }[test.server ?? 'main'];
  return fetchAnswer(`${server.url}${test.url}`, { method: test.method, headers, body });
}

describe('real answers of the HTTP API', () => {
  it.each(cases.map((test) => [test.name, test] as const))('%s', async (_name, test) => {
    const answer = await send(test);
    expect(answer.status, answer.body).toBe(test.status);
    checker.check({ method: test.method, path: test.path }, answer);
    if (test.code !== undefined || test.field !== undefined) {
      const { error } = JSON.parse(answer.body) as { error: { code: string; field?: string } };
      if (test.code !== undefined) expect(error.code).toBe(test.code);
      if (test.field !== undefined) expect(error.field).toBe(test.field);
    }
    if (test.answer !== undefined) expect(JSON.parse(answer.body)).toMatchObject(test.answer);
    if (test.bodyIsValid !== undefined) {
      const errors = checker.requestBodyErrors(test.method, test.path, test.body);
      expect(
        errors === null,
        `the document ${test.bodyIsValid ? 'refuses' : 'accepts'} the body: ${errors}`,
      ).toBe(test.bodyIsValid);
    }
  });

  it('refuses a second waiting publish of a user past the per-user limit with 429 and Retry-After', async () => {
    const publish = (): Promise<Answer> =>
      fetchAnswer(`${main.url}/v1/users/dave/events?wait=2000`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}`, ...JSON_TYPE },
        body: JSON.stringify(EVENT),
      });
    const published = main.gateway.stats().events.published;
    const first = publish();
    await waitFor(() => main.gateway.stats().events.published > published, {
      what: 'the first waiting publish stored',
    });
    const answer = await publish();
    expect(answer.status, answer.body).toBe(429);
    expect(answer.header('retry-after')).toBe('5');
    checker.check({ method: 'POST', path: PUBLISH }, answer);
    expect(JSON.parse(answer.body)).toMatchObject({
      error: { code: 'too_many_waits', field: 'wait' },
    });
    expect((await first).status).toBe(202);
  });

  it('issues a ticket for a user token, with CORS headers', async () => {
    const answer = await fetchAnswer(`${main.url}/v1/tickets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await token('alice')}`, origin: ORIGIN },
    });
    expect(answer.status).toBe(201);
    expect(answer.header('access-control-allow-origin')).toBe(ORIGIN);
    checker.check({ method: 'POST', path: '/v1/tickets' }, answer);
  });

  it('answers a ticket with 503 when the engine is down', async () => {
    const answer = await fetchAnswer(`${down.url}/v1/tickets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await token('alice')}` },
    });
    expect(answer.status, answer.body).toBe(503);
    checker.check({ method: 'POST', path: '/v1/tickets' }, answer);
  });

  it('answers a run to its user: by API key, by the user token (with CORS), and in the list', async () => {
    const publish = (body: unknown): Promise<Answer> =>
      fetchAnswer(`${main.url}/v1/users/runner/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect(
      (await publish({ event: 'agent_started', runId: 'doc-run', data: { agent: 'a' } })).status,
    ).toBe(202);
    expect(
      (await publish({ event: 'agent_text', runId: 'doc-run', data: { text: 'Hi' } })).status,
    ).toBe(202);
    const byKey = await fetchAnswer(`${main.url}/v1/users/runner/runs/doc-run`, {
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    expect(byKey.status, byKey.body).toBe(200);
    checker.check({ method: 'GET', path: USER_RUN }, byKey);
    const { run } = JSON.parse(byKey.body) as { run: { parts: unknown[] } };
    expect(run).toMatchObject({ runId: 'doc-run', agent: 'a', status: 'running', upToSeq: 2 });
    expect(run.parts).toEqual([{ kind: 'text', id: 'm2', text: 'Hi', open: true }]);

    const jwt = await token('runner');
    const mine = await fetchAnswer(`${main.url}/v1/runs/doc-run`, {
      headers: { authorization: `Bearer ${jwt}`, origin: ORIGIN },
    });
    expect(mine.status, mine.body).toBe(200);
    expect(mine.header('access-control-allow-origin')).toBe(ORIGIN);
    checker.check({ method: 'GET', path: MY_RUN }, mine);
    expect(JSON.parse(mine.body)).toEqual(JSON.parse(byKey.body));

    const list = await fetchAnswer(`${main.url}/v1/runs?limit=5`, {
      headers: { authorization: `Bearer ${jwt}`, origin: ORIGIN },
    });
    expect(list.status, list.body).toBe(200);
    checker.check({ method: 'GET', path: '/v1/runs' }, list);
    expect(JSON.parse(list.body)).toEqual({ runs: [JSON.parse(byKey.body).run] });
  });

  it("answers another user's run exactly like a missing one", async () => {
    const headers = { authorization: `Bearer ${await token('someone-else')}` };
    const other = await fetchAnswer(`${main.url}/v1/runs/doc-run`, { headers });
    const missing = await fetchAnswer(`${main.url}/v1/runs/no-such-run`, { headers });
    expect(other.status).toBe(404);
    checker.check({ method: 'GET', path: MY_RUN }, other);
    expect(JSON.parse(other.body)).toEqual(JSON.parse(missing.body));
    expect(JSON.parse(other.body)).toEqual({
      error: { code: 'not_found', message: 'no such run' },
    });
  });

  it('refuses a bad run id and a bad limit of the token user with 400', async () => {
    const headers = { authorization: `Bearer ${await token('runner')}` };
    const badRun = await fetchAnswer(`${main.url}/v1/runs/bad%20run`, { headers });
    expect(badRun.status).toBe(400);
    checker.check({ method: 'GET', path: MY_RUN }, badRun);
    for (const limit of ['0', '101', 'x', '1.5']) {
      const answer = await fetchAnswer(`${main.url}/v1/runs?limit=${limit}`, { headers });
      expect(answer.status, limit).toBe(400);
      expect(JSON.parse(answer.body).error.field).toBe('limit');
      checker.check({ method: 'GET', path: '/v1/runs' }, answer);
    }
  });

  it('answers the runs of the token user with 503 when the engine is down', async () => {
    const headers = { authorization: `Bearer ${await token('runner')}` };
    for (const [url, path] of [
      ['/v1/runs/r1', MY_RUN],
      ['/v1/runs', '/v1/runs'],
    ] as const) {
      const answer = await fetchAnswer(`${down.url}${url}`, { headers });
      expect(answer.status, answer.body).toBe(503);
      checker.check({ method: 'GET', path }, answer);
    }
  });

  it('answers an unknown path with 404 and a known one with another method with 405 and Allow', async () => {
    const notFound = await fetchAnswer(`${main.url}/v1/nope`);
    expect(notFound.status).toBe(404);
    checker.check('unmatched', notFound);

    const paths = servedDocument.paths as Record<string, Json>;
    for (const [path, item] of Object.entries(paths)) {
      if (path === main.gateway.options.path) continue;
      const methods = HTTP_METHODS.filter((method) => item[method] !== undefined);
      const other = (['put', 'patch', 'get', 'post'] as const).find((m) => !methods.includes(m));
      const url = path.replace('{userId}', 'alice');
      const answer = await fetchAnswer(`${main.url}${url}`, {
        method: other?.toUpperCase(),
        headers: { authorization: `Bearer ${API_KEY}` },
      });
      expect(answer.status, `${other} ${path}`).toBe(405);
      checker.check('unmatched', answer);
      const allow = (answer.header('allow') ?? '').split(', ').sort();
      expect(allow, path).toEqual(methods.map((m) => m.toUpperCase()).sort());
    }
  });
});

describe('real answers of the WebSocket endpoint', () => {
  const WS = '/v1/ws';
  const wsUrl = (server: RunningServer, query = ''): string =>
    `${server.url.replace(/^http/, 'ws')}${WS}${query}`;

  it('switches protocols, answering the subprotocol and never the token', async () => {
    const jwt = await token('dave');
    const { answer, socket } = await handshake(wsUrl(main), {
      protocols: ['agentsocket.v1', `bearer.${jwt}`],
    });
    socket.close();
    expect(answer.status).toBe(101);
    expect(answer.header('sec-websocket-protocol')).toBe('agentsocket.v1');
    checker.check({ method: 'GET', path: WS }, answer);
  });

  it.each([
    ['an unknown query parameter', '?foo=1', {}, 400, 'foo'],
    ['no credential', '', {}, 401, undefined],
    ['another origin', '', { origin: 'http://evil.test' }, 403, 'Origin'],
  ] as const)('refuses %s', async (_name, query, headers, status, field) => {
    const { answer } = await handshake(wsUrl(main, query), { headers });
    expect(answer.status).toBe(status);
    expect(answer.header('connection')).toBe('close');
    checker.check({ method: 'GET', path: WS }, answer);
    expect((JSON.parse(answer.body) as { error: { field?: string } }).error.field).toBe(field);
  });

  it('refuses a second connection past the per-user limit with 429 and Retry-After', async () => {
    const jwt = await token('carol');
    const first = await handshake(wsUrl(main), { headers: { authorization: `Bearer ${jwt}` } });
    expect(first.answer.status).toBe(101);
    try {
      await waitFor(async () => main.gateway.connections('carol').length === 1, {
        what: "carol's first connection registered",
      });
      const { answer } = await handshake(wsUrl(main), {
        headers: { authorization: `Bearer ${jwt}` },
      });
      expect(answer.status).toBe(429);
      checker.check({ method: 'GET', path: WS }, answer);
    } finally {
      first.socket.close();
    }
  });

  it('refuses a handshake with 503 when the engine is down', async () => {
    const { answer } = await handshake(wsUrl(down), {
      headers: { authorization: `Bearer ${await token('erin')}` },
    });
    expect(answer.status).toBe(503);
    checker.check({ method: 'GET', path: WS }, answer);
  });

  it('answers a plain GET (no upgrade) with the HTTP API’s 404', async () => {
    const answer = await fetchAnswer(`${main.url}${WS}`);
    expect(answer.status).toBe(404);
    checker.check({ method: 'GET', path: WS }, answer);
  });

  it('answers an upgrade to another path with 404', async () => {
    const { answer } = await handshake(`${main.url.replace(/^http/, 'ws')}/v1/elsewhere`);
    expect(answer.status).toBe(404);
    checker.check('unmatched', answer);
  });
});

describe('the hardening rules the document states (skipped until the code has them)', () => {
  /** Whether this build refuses query parameters a route does not define. */
  const hardened = async (): Promise<boolean> =>
    (await fetchAnswer(`${main.url}/healthz?probe=1`)).status === 400;

  it('refuses a query parameter the route does not define, on every route', async (ctx) => {
    if (!(await hardened())) ctx.skip();
    for (const operation of operationsOf(servedDocument)) {
      const [method = '', path = ''] = operation.split(' ');
      if (path === main.gateway.options.path) continue;
      const answer = await fetchAnswer(
        `${main.url}${path.replace('{userId}', 'alice')}?unknown=1`,
        {
          method,
          headers: { authorization: `Bearer ${API_KEY}`, ...JSON_TYPE },
          body: method === 'POST' ? JSON.stringify(EVENT) : undefined,
        },
      );
      expect(answer.status, operation).toBe(400);
      expect((JSON.parse(answer.body) as { error: { field?: string } }).error.field).toBe(
        'unknown',
      );
      checker.check({ method, path }, answer);
    }
  });

  it('refuses a user id made only of dots, as the document does', async (ctx) => {
    if (!(await hardened())) ctx.skip();
    const answer = await send({
      name: '',
      method: 'POST',
      path: PUBLISH,
      url: '/v1/users/.../events',
      body: EVENT,
      status: 400,
    });
    expect(answer.status).toBe(400);
    expect(checker.errorsAt('#/components/schemas/UserId', '...')).not.toBeNull();
    checker.check({ method: 'POST', path: PUBLISH }, answer);
  });

  it('refuses data nested deeper than the depth limit', async (ctx) => {
    if (!(await hardened())) ctx.skip();
    const DEFAULT_MAX_DATA_DEPTH = 64;
    const nested = (depth: number): unknown => (depth === 0 ? 0 : [nested(depth - 1)]);
    for (const [depth, status] of [
      [DEFAULT_MAX_DATA_DEPTH, 202],
      [DEFAULT_MAX_DATA_DEPTH + 1, 400],
    ] as const) {
      const answer = await send({ ...cases[0]!, body: { event: 'deep', data: nested(depth) } });
      expect(answer.status, `depth ${depth}`).toBe(status);
      checker.check({ method: 'POST', path: PUBLISH }, answer);
      if (status === 400) {
        expect((JSON.parse(answer.body) as { error: { field?: string } }).error.field).toBe('data');
      }
    }
  });

  it('refuses a user token without exp', async (ctx) => {
    if (!(await hardened())) ctx.skip();
    const jwt = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .sign(Buffer.from(SECRET));
    const answer = await fetchAnswer(`${main.url}/v1/tickets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${jwt}` },
    });
    expect(answer.status).toBe(401);
    checker.check({ method: 'POST', path: '/v1/tickets' }, answer);
  });
});

describe('real answers of POST /v1/ag-ui/runs', () => {
  const AGUI = '/v1/ag-ui/runs';
  const input = (runId: string): unknown => ({
    threadId: 't',
    runId,
    state: {},
    messages: [],
    tools: [],
    context: [],
    forwardedProps: {},
  });
  const post = async (
    server: RunningServer,
    headers: Record<string, string>,
    body: unknown = input('run-missing'),
    query = '',
  ): Promise<Answer> =>
    fetchAnswer(`${server.url}${AGUI}${query}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  it('streams a run, and refuses what the document says it refuses', async () => {
    const jwt = { authorization: `Bearer ${await token('agui-user')}` };
    await main.gateway.publish('agui-user', {
      event: 'agent_started',
      runId: 'run-done',
      data: { agent: 'a' },
    });
    await main.gateway.publish('agui-user', {
      event: 'agent_completed',
      runId: 'run-done',
      data: { status: 'succeeded', result: 1 },
    });
    const answers: [number, Answer][] = [
      [200, await post(main, { ...jwt, origin: ORIGIN }, input('run-done'))],
      [400, await post(main, jwt, input('bad id'))],
      [400, await post(main, jwt, input('run-done'), '?waitMs=30001')],
      [401, await post(main, { authorization: `Bearer ${API_KEY}` })],
      [403, await post(main, { ...jwt, origin: 'http://evil.test' })],
      [404, await post(main, jwt)],
      [413, await post(main, jwt, { runId: 'r', pad: 'x'.repeat(5000) })],
      [415, await post(main, { ...jwt, 'content-type': 'text/plain' }, 'runId=r')],
      [503, await post(draining, { authorization: `Bearer ${await token('agui-user')}` })],
    ];
    for (const [status, answer] of answers) {
      expect(answer.status, answer.body).toBe(status);
      checker.check({ method: 'POST', path: AGUI }, answer);
    }
    expect(answers[0]?.[1].body).toContain('"type":"RUN_FINISHED"');
  });

  it('answers 429 past the streams of one user on a node', async () => {
    const jwt = { authorization: `Bearer ${await token('agui-many')}` };
    await main.gateway.publish('agui-many', {
      event: 'agent_started',
      runId: 'run-open',
      data: { agent: 'a' },
    });
    const open: Response[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const response = await fetch(`${main.url}${AGUI}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...jwt },
          body: JSON.stringify(input('run-open')),
        });
        open.push(response);
        expect(response.status).toBe(200);
      }
      const answer = await post(main, jwt, input('run-open'));
      expect(answer.status, answer.body).toBe(429);
      checker.check({ method: 'POST', path: AGUI }, answer);
    } finally {
      for (const response of open) await response.body?.cancel();
    }
  });

  it('answers its preflight', async () => {
    const cases: [number, string, Record<string, string>][] = [
      [204, '', { origin: ORIGIN }],
      [400, '?token=x', {}],
      [403, '', { origin: 'http://evil.test' }],
    ];
    for (const [status, query, headers] of cases) {
      const answer = await fetchAnswer(`${main.url}${AGUI}${query}`, {
        method: 'OPTIONS',
        headers,
      });
      expect(answer.status, answer.body).toBe(status);
      checker.check({ method: 'OPTIONS', path: AGUI }, answer);
    }
  });
});

describe('real answers of GET /v1/sse and POST /v1/sse/ack', () => {
  const SSE = '/v1/sse';
  const ACK = '/v1/sse/ack';
  const ticketFor = async (server: RunningServer, userId: string): Promise<string> => {
    const answer = await fetchAnswer(`${server.url}/v1/tickets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await token(userId)}` },
    });
    expect(answer.status).toBe(201);
    return (JSON.parse(answer.body) as { ticket: string }).ticket;
  };
  /** A 200 stream is read up to its welcome, then left; a refusal is read whole. */
  const get = async (
    server: RunningServer,
    query: string,
    headers: Record<string, string> = {},
  ): Promise<{ answer: Answer; welcome: Record<string, unknown> | null }> => {
    const response = await fetch(`${server.url}${SSE}${query}`, { headers });
    if (response.status !== 200) {
      const body = await response.text();
      return {
        answer: { status: response.status, header: (n) => response.headers.get(n), body },
        welcome: null,
      };
    }
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let body = '';
    while (!body.includes('\n\n')) {
      const { value, done } = await reader.read();
      if (done) break;
      body += decoder.decode(value, { stream: true });
    }
    open.push(reader);
    const data = /^data: (.*)$/m.exec(body)?.[1] ?? 'null';
    return {
      answer: { status: 200, header: (n) => response.headers.get(n), body },
      welcome: JSON.parse(data) as Record<string, unknown> | null,
    };
  };
  const open: ReadableStreamDefaultReader<Uint8Array>[] = [];
  afterAll(async () => {
    for (const reader of open) await reader.cancel();
  });

  it('streams, and refuses what the document says it refuses', async () => {
    const first = await get(main, `?ticket=${await ticketFor(main, 'sse-user')}`, {
      origin: ORIGIN,
    });
    expect(first.welcome).toMatchObject({ type: 'welcome', userId: 'sse-user' });
    const answers: [number, Answer][] = [
      [200, first.answer],
      [400, (await get(main, `?ticket=${await ticketFor(main, 'sse-other')}&lastSeq=1`)).answer],
      [401, (await get(main, '')).answer],
      [403, (await get(main, '', { origin: 'http://evil.test' })).answer],
      // maxConnectionsPerUser is 1: the stream above holds it.
      [429, (await get(main, `?ticket=${await ticketFor(main, 'sse-user')}`)).answer],
      [503, (await get(draining, `?ticket=${'t'.repeat(32)}`)).answer],
    ];
    for (const [status, answer] of answers) {
      expect(answer.status, answer.body).toBe(status);
      checker.check({ method: 'GET', path: SSE }, answer);
    }

    const { connectionId, ackKey } = first.welcome as { connectionId: string; ackKey: string };
    const ack = (body: unknown, headers: Record<string, string> = {}): Promise<Answer> =>
      fetchAnswer(`${main.url}${ACK}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
    const acks: [number, Answer][] = [
      [200, await ack({ connectionId, ackKey, seq: 0 }, { origin: ORIGIN })],
      [400, await ack({ connectionId, ackKey, seq: 5 })],
      [400, await ack({ connectionId, seq: 0 })],
      [403, await ack({ connectionId, ackKey, seq: 0 }, { origin: 'http://evil.test' })],
      [404, await ack({ connectionId, ackKey: 'k'.repeat(32), seq: 0 })],
      [413, await ack({ connectionId, ackKey, seq: 0, pad: 'x'.repeat(5000) })],
      [415, await ack('seq=0', { 'content-type': 'text/plain' })],
    ];
    for (const [status, answer] of acks) {
      expect(answer.status, answer.body).toBe(status);
      checker.check({ method: 'POST', path: ACK }, answer);
    }
  });

  it('answers its preflights', async () => {
    for (const path of [SSE, ACK]) {
      const cases: [number, string, Record<string, string>][] = [
        [204, '', { origin: ORIGIN }],
        [400, '?token=x', {}],
        [403, '', { origin: 'http://evil.test' }],
      ];
      for (const [status, query, headers] of cases) {
        const answer = await fetchAnswer(`${main.url}${path}${query}`, {
          method: 'OPTIONS',
          headers,
        });
        expect(answer.status, answer.body).toBe(status);
        checker.check({ method: 'OPTIONS', path }, answer);
      }
    }
  });
});

describe('coverage', () => {
  it('produced every response the document describes', () => {
    const missing = responsesOf(servedDocument).filter((label) => !checker.covered.has(label));
    expect(missing).toEqual([]);
  });
});
