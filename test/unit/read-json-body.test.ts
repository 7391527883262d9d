import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayError } from '../../src/errors.js';
import { sendError, sendJson } from '../../src/http/json-response.js';
import { checkJsonContentType, readJsonBody } from '../../src/http/read-json-body.js';

const MAX = 1024;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: { echo?: unknown; error?: { code: string; message: string; field?: string } };
}

/** Sends `chunks` as the body (chunked unless `contentLength` is given) and reads the answer. */
function send(
  port: number,
  chunks: Buffer[],
  headers: Record<string, string> = { 'content-type': 'application/json' },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ port, host: '127.0.0.1', method: 'POST', path: '/', headers });
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (chunk: Buffer) => parts.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: JSON.parse(Buffer.concat(parts).toString('utf8')) as Answer['body'],
        }),
      );
    });
    // The server may answer and close before the whole body is written.
    req.on('error', (error) => reject(error));
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

describe('readJsonBody', () => {
  let server: Server;
  let port: number;

  beforeAll(async () => {
    server = createServer((req, res) => {
      readJsonBody(req, MAX).then(
        (echo) => sendJson(res, 200, { echo }),
        (error: GatewayError) => sendError(res, error, req.complete ? {} : { Connection: 'close' }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('parses a JSON body', async () => {
    const answer = await send(port, [Buffer.from('{"a":[1,"é"]}')]);
    expect(answer).toMatchObject({ status: 200, body: { echo: { a: [1, 'é'] } } });
  });

  it('accepts application/json in any case, with a UTF-8 charset', async () => {
    const upper = await send(port, [Buffer.from('1')], {
      'content-type': 'Application/JSON ; charset=utf8',
    });
    expect(upper.body.echo).toBe(1);
    const charset = await send(port, [Buffer.from('2')], {
      'content-type': 'application/json; charset="UTF-8"',
    });
    expect(charset.body.echo).toBe(2);
  });

  it('answers 415 to another content type, a missing one, or another charset', async () => {
    for (const headers of [
      { 'content-type': 'text/plain' },
      { 'content-type': 'application/x-www-form-urlencoded' },
      // Structured-syntax JSON types are not application/json (docs/operations.md).
      { 'content-type': 'application/vnd.api+json' },
      { 'content-type': 'application/problem+json; charset=utf-8' },
      { 'content-type': 'application/jsonx' },
      {} as Record<string, string>,
      { 'content-type': 'application/json; charset=latin1' },
    ]) {
      const answer = await send(port, [Buffer.from('{}')], headers);
      expect(answer.status).toBe(415);
      expect(answer.body.error).toMatchObject({
        code: 'unsupported_media_type',
        field: 'content-type',
      });
    }
  });

  it('answers 400 naming the body for invalid JSON and for an empty body', async () => {
    const invalid = await send(port, [Buffer.from('{"a":')]);
    expect(invalid).toMatchObject({
      status: 400,
      body: {
        error: { code: 'bad_request', message: 'the body is not valid JSON', field: 'body' },
      },
    });
    const empty = await send(port, []);
    expect(empty.body.error).toMatchObject({ code: 'bad_request', field: 'body' });
    expect(empty.status).toBe(400);
  });

  it('accepts a body of exactly the limit and refuses one byte more with 413', async () => {
    const exact = `"${'x'.repeat(MAX - 2)}"`;
    expect((await send(port, [Buffer.from(exact)])).status).toBe(200);
    // Chunked (no Content-Length): the overflow is found while reading.
    const over = await send(port, [Buffer.from(exact), Buffer.from(' ')]);
    expect(over.status).toBe(413);
    expect(over.body.error).toEqual({
      code: 'payload_too_large',
      message: `the body is larger than ${MAX} bytes`,
      field: 'body',
    });
    // Drained within the allowance: the connection can be kept.
    expect(over.headers.connection).not.toBe('close');
  });

  it('refuses a declared Content-Length far over the limit before reading it', async () => {
    const body = Buffer.alloc(MAX * 3, 0x20);
    const answer = await send(port, [body], {
      'content-type': 'application/json',
      'content-length': String(body.length),
    }).catch((error: NodeJS.ErrnoException) => error);
    // The answer comes first; a client that keeps writing may see a reset instead.
    if (answer instanceof Error) expect(answer.code).toMatch(/ECONNRESET|EPIPE/);
    else {
      expect(answer.status).toBe(413);
      expect(answer.headers.connection).toBe('close');
    }
  });

  it('stops reading an undeclared body past twice the limit and closes the connection', async () => {
    const answer = await send(port, [Buffer.alloc(MAX * 3, 0x20)]).catch(
      (error: NodeJS.ErrnoException) => error,
    );
    if (answer instanceof Error) expect(answer.code).toMatch(/ECONNRESET|EPIPE/);
    else {
      expect(answer.status).toBe(413);
      expect(answer.headers.connection).toBe('close');
    }
  });
});

describe('checkJsonContentType', () => {
  it('names the field and the reason', () => {
    expect(() => checkJsonContentType('text/html')).toThrow(
      'Content-Type must be application/json',
    );
    expect(() => checkJsonContentType('application/json;charset=utf-16')).toThrow(
      'the JSON body must be UTF-8',
    );
    expect(() => checkJsonContentType('Application/JSON; charset=utf-8')).not.toThrow();
  });
});
