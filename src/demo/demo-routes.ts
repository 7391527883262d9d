/**
 * HTTP routes of the demo page (development only): the page itself, the
 * compiled SDK under `/sdk/`, and endpoints that stand in for an app's
 * backend: `POST /demo/session` mints a user token for any user id,
 * `POST /demo/run` starts a simulated agent run for a user, and
 * `GET /demo/config` tells the page the dev API key for its "publish to this
 * page" panel. Never mount them in production: anyone who can reach them can
 * act as any user and publish to anyone.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, resolve, sep } from 'node:path';
import { splitRequestTarget, unknownQueryParameter } from '../http/router.js';
import type { ErrorBody, ErrorCode } from '../protocol/error-codes.js';
import { statusOf } from '../protocol/error-codes.js';
import { isValidUserId, USER_ID_RULE } from '../protocol/user-id.js';
import { runSimulatedAgent } from './simulated-agent.js';
import type { PublishFn } from './simulated-agent.js';

export interface DemoHandlerOptions {
  /** Publishes one event to one user (the gateway's `publish`). */
  publish: PublishFn;
  /** A user token for `userId`, such as a short-lived HS256 JWT. */
  mintToken: (userId: string) => Promise<string> | string;
  /** Folder of `index.html`, `app.js` and `styles.css` (the repository's `web/`). */
  webRoot: string;
  /** The build output (`dist/`): only its `client/` and `protocol/` folders are served, under `/sdk/`. */
  sdkRoot: string;
  /**
   * The API key the page shows in its ready-to-run curl: the one `--dev`
   * generated and printed at start. Absent: the page shows a placeholder.
   */
  publishApiKey?: string;
  /** Pause between streamed tokens of a simulated run. Default 40 ms. */
  tokenDelayMs?: number;
  /** Simulated runs at once; past it `POST /demo/run` answers 429. Default 100. */
  maxConcurrentRuns?: number;
  /** Aborting it cancels every running simulated run (shutdown). */
  signal?: AbortSignal;
  /** Failures of simulated runs (a publish refused). Default: `console.error`. */
  onRunError?: (error: unknown, runId: string) => void;
}

/** Largest JSON body of `/demo/*`. */
export const DEMO_MAX_BODY_BYTES = 16 * 1024;
/** Longest prompt of `POST /demo/run`. */
export const DEMO_MAX_PROMPT_LENGTH = 4000;

const WEB_FILES: Readonly<Record<string, string>> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/app.js': 'app.js',
  '/run-view.js': 'run-view.js',
  '/publish-panel.js': 'publish-panel.js',
  '/styles.css': 'styles.css',
};
const NO_QUERY: ReadonlySet<string> = new Set();
/** What the SDK imports: itself, the wire contract and the pure run modules. */
const SDK_FOLDERS = new Set(['client', 'protocol', 'runs']);
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};
/** A safe file name segment: no separators, no dot-only names, no control characters. */
const SEGMENT_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

class HttpError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(text);
}

function sendError(res: ServerResponse, error: HttpError, headers: Record<string, string> = {}) {
  const body: ErrorBody = {
    error: {
      code: error.code,
      message: error.message,
      ...(error.field !== undefined ? { field: error.field } : {}),
    },
  };
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  sendJson(res, statusOf(error.code), body);
}

/**
 * Maps `/sdk/<folder>/<path>` to a file under `sdkRoot/<folder>`, or null when
 * the path is not one the demo serves. Every segment is checked after
 * decoding, so `..`, encoded slashes and NUL never reach the file system; the
 * resolved path must still lie inside the folder.
 */
function sdkFile(sdkRoot: string, pathname: string): string | null {
  const segments = pathname.slice('/sdk/'.length).split('/');
  const folder = segments.shift();
  if (folder === undefined || !SDK_FOLDERS.has(folder) || segments.length === 0) return null;
  const decoded: string[] = [];
  for (const segment of segments) {
    let value: string;
    try {
      value = decodeURIComponent(segment);
    } catch {
      return null;
    }
    if (!SEGMENT_PATTERN.test(value)) return null;
    decoded.push(value);
  }
  const name = decoded[decoded.length - 1]!;
  if (!name.endsWith('.js') && !name.endsWith('.js.map')) return null;
  const root = resolve(sdkRoot, folder);
  const file = resolve(root, ...decoded);
  return file.startsWith(root + sep) ? file : null;
}

async function serveFile(req: IncomingMessage, res: ServerResponse, file: string): Promise<void> {
  let content: Buffer;
  try {
    content = await readFile(file);
  } catch {
    sendError(res, new HttpError('not_found', 'no such file'));
    return;
  }
  res.writeHead(200, {
    'Content-Type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
    'Content-Length': content.length,
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(req.method === 'HEAD' ? undefined : content);
}

/** Reads a JSON object body of at most `DEMO_MAX_BODY_BYTES`; an empty body reads as `{}`. */
async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > DEMO_MAX_BODY_BYTES) {
    throw new HttpError('payload_too_large', `body over ${DEMO_MAX_BODY_BYTES} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > DEMO_MAX_BODY_BYTES) {
      throw new HttpError('payload_too_large', `body over ${DEMO_MAX_BODY_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  if (size === 0) return {};
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new HttpError('unsupported_media_type', 'body must be application/json');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError('bad_request', 'body is not valid JSON', 'body');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new HttpError('bad_request', 'body must be a JSON object', 'body');
  }
  return parsed as Record<string, unknown>;
}

/**
 * The demo's request handler. Returns true when the request is one of its
 * routes (it then answers it, possibly after the call returns), false to let
 * the caller route it.
 *
 * @example
 * const demo = createDemoHandler({ publish: (u, e) => gateway.publish(u, e), mintToken, webRoot, sdkRoot });
 * http.createServer((req, res) => demo(req, res) || api(req, res));
 */
export function createDemoHandler(
  options: DemoHandlerOptions,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const tokenDelayMs = options.tokenDelayMs ?? 40;
  const maxRuns = options.maxConcurrentRuns ?? 100;
  const onRunError =
    options.onRunError ??
    ((error: unknown, runId: string) => {
      console.error(`demo run ${runId} failed:`, error instanceof Error ? error.message : error);
    });
  const runs = new Set<AbortController>();
  options.signal?.addEventListener('abort', () => {
    for (const run of runs) run.abort();
  });

  async function createSession(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJsonBody(req);
    const userId = body.userId ?? `user-${randomBytes(6).toString('hex')}`;
    if (!isValidUserId(userId)) {
      throw new HttpError('bad_request', `userId must be ${USER_ID_RULE}`, 'userId');
    }
    const token = await options.mintToken(userId);
    sendJson(res, 200, { userId, token });
  }

  async function startRun(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJsonBody(req);
    if (!isValidUserId(body.userId)) {
      throw new HttpError('bad_request', `userId must be ${USER_ID_RULE}`, 'userId');
    }
    const prompt = body.prompt;
    if (
      typeof prompt !== 'string' ||
      prompt.trim().length === 0 ||
      prompt.length > DEMO_MAX_PROMPT_LENGTH
    ) {
      throw new HttpError(
        'bad_request',
        `prompt must be a non-empty string of at most ${DEMO_MAX_PROMPT_LENGTH} characters`,
        'prompt',
      );
    }
    if (runs.size >= maxRuns || options.signal?.aborted) {
      sendError(res, new HttpError('rate_limited', 'too many demo runs at once'), {
        'Retry-After': '1',
      });
      return;
    }
    const runId = `run_${randomUUID()}`;
    const controller = new AbortController();
    runs.add(controller);
    runSimulatedAgent(options.publish, body.userId, prompt, {
      tokenDelayMs,
      signal: controller.signal,
      runId,
    })
      .catch((error: unknown) => onRunError(error, runId))
      .finally(() => runs.delete(controller));
    sendJson(res, 202, { runId });
  }

  function answer(res: ServerResponse, work: Promise<void>): void {
    work.catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const httpError =
        error instanceof HttpError ? error : new HttpError('internal', 'demo request failed');
      // A body over the limit is left unread: close the connection after answering.
      if (httpError.code === 'payload_too_large') res.setHeader('Connection', 'close');
      sendError(res, httpError);
    });
  }

  function methodNotAllowed(res: ServerResponse, allow: string): true {
    sendError(res, new HttpError('method_not_allowed', `use ${allow}`), { Allow: allow });
    return true;
  }

  return (req, res) => {
    let pathname: string;
    try {
      pathname = new URL(req.url ?? '/', 'http://demo.invalid').pathname;
    } catch {
      return false;
    }
    const method = req.method ?? 'GET';
    const isRead = method === 'GET' || method === 'HEAD';
    const webFile = WEB_FILES[pathname];
    if (webFile !== undefined) {
      if (!isRead) return methodNotAllowed(res, 'GET, HEAD');
      answer(res, serveFile(req, res, resolve(options.webRoot, webFile)));
      return true;
    }
    if (pathname.startsWith('/sdk/')) {
      if (!isRead) return methodNotAllowed(res, 'GET, HEAD');
      // The raw path too: `new URL` already folded `..`, a raw `..` is refused outright.
      const raw = (req.url ?? '').split('?')[0] ?? '';
      const file = /(^|\/)\.\.?(\/|$)/.test(raw) ? null : sdkFile(options.sdkRoot, pathname);
      if (file === null) {
        sendError(res, new HttpError('not_found', 'no such SDK file'));
        return true;
      }
      answer(res, serveFile(req, res, file));
      return true;
    }
    if (pathname === '/demo/config') {
      if (!isRead) return methodNotAllowed(res, 'GET, HEAD');
      sendJson(res, 200, { publishApiKey: options.publishApiKey ?? null });
      return true;
    }
    if (pathname === '/demo/session' || pathname === '/demo/run') {
      if (method !== 'POST') return methodNotAllowed(res, 'POST');
      // Like the API: these routes take no query parameters, and say so (never echoing a value).
      const unknown = unknownQueryParameter(splitRequestTarget(req.url ?? '/').query, NO_QUERY);
      if (unknown !== undefined) {
        sendError(
          res,
          new HttpError('bad_request', `query parameter "${unknown}" is not taken`, unknown),
        );
        return true;
      }
      answer(res, pathname === '/demo/session' ? createSession(req, res) : startRun(req, res));
      return true;
    }
    return false;
  };
}
