/**
 * A tiny HTTP server on 127.0.0.1 (port 0) that answers every POST with the
 * SSE body a test computes from the request, so a stock AG-UI `HttpAgent`
 * reads our bytes through its real fetch, SSE parser, enforcement, verifier
 * and reducer. It writes the body and ends the response: a body without a
 * terminal event is the clean end of a cut stream.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SseRequest {
  headers: IncomingHttpHeaders;
  body: unknown;
}

export interface SseTestServer {
  url: string;
  /** Every body sent, in order, for byte-level assertions. */
  readonly sent: string[];
  close(): Promise<void>;
}

/** Bound on a request body: an AG-UI RunAgentInput of a test is a few KiB. */
const MAX_BODY_BYTES = 1024 * 1024;

export async function startSseTestServer(
  respond: (request: SseRequest) => string,
): Promise<SseTestServer> {
  const sent: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) req.destroy(new Error('request body too large'));
      else chunks.push(chunk);
    });
    req.on('end', () => {
      let body: string;
      try {
        body = respond({
          headers: req.headers,
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown,
        });
      } catch (error) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(error));
        return;
      }
      sent.push(body);
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/ag-ui/runs`,
    sent,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
