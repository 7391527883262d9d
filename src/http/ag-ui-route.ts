/**
 * `POST /v1/ag-ui/runs`: one run of the token's user as an AG-UI event stream
 * (Server-Sent Events), for a stock `@ag-ui/client` HttpAgent pointed at it
 * (docs/ag-ui.md). The stream logic is `gateway/agui-run-stream.ts`; this file
 * reads the request and answers.
 *
 * - Authorized by the user's JWT (`Authorization: Bearer`); an API key there
 *   is a token that does not verify: 401. CORS for the allowed origins.
 * - Every refusal (401, 400, 404 for a run the user does not have, 429, 503)
 *   is a JSON error before any byte of the stream.
 * - `?waitMs=` (0 to 30 000) waits for a run that has not started yet.
 * - `Last-Event-ID` resumes; without it, snapshot mode.
 */
import type { ServerResponse } from 'node:http';
import type { Message } from '@ag-ui/core';
import { MessageSchema } from '@ag-ui/core/schemas';
import type { UserAuthenticator } from '../auth/authenticator.js';
import { parseLastEventId } from '../agui/sse-encoding.js';
import { GatewayError } from '../errors.js';
import type { SseSink } from '../gateway/agui-run-stream.js';
import type { Gateway } from '../gateway/gateway-types.js';
import { DEFAULT_TIMING } from '../gateway/options.js';
import { REF_PATTERN } from '../protocol/event-input.js';
import type { Cors } from './cors.js';
import { readJsonBody } from './read-json-body.js';
import type { Router } from './router.js';
import { verifyUserBearer } from './user-token.js';
import { parseWait } from './wait-param.js';

export const AGUI_RUNS_ROUTE = '/v1/ag-ui/runs';

/** What a browser's preflight may ask to send. */
const PREFLIGHT_HEADERS = 'Authorization, Content-Type, Accept, Last-Event-ID';

/** Longest `threadId` taken from a RunAgentInput (it only names the thread in RUN_STARTED). */
const MAX_THREAD_ID_LENGTH = 256;

export interface AguiRouteDependencies {
  gateway: Pick<Gateway, 'openAguiStream'>;
  authenticator: UserAuthenticator;
  cors: Cors;
  maxBodyBytes: number;
  /** How long an ended stream may take to flush to a slow reader before it is cut. */
  closeTimeoutMs?: number;
}

/** What the route reads of a RunAgentInput; the rest (tools, state, …) is for agents. */
export interface RunAgentRequest {
  runId: string;
  threadId?: string;
  messages: Message[];
}

export function addAguiRoutes(router: Router, deps: AguiRouteDependencies): void {
  const closeTimeoutMs = deps.closeTimeoutMs ?? DEFAULT_TIMING.closeTimeoutMs;

  router.on('OPTIONS', AGUI_RUNS_ROUTE, (ctx) =>
    deps.cors.preflight(ctx, 'POST', PREFLIGHT_HEADERS),
  );

  router.on(
    'POST',
    AGUI_RUNS_ROUTE,
    async (ctx) => {
      const { req, res } = ctx;
      deps.cors.apply(ctx);
      const user = await verifyUserBearer(req, deps.authenticator);
      const waitMs = parseWait(ctx.query, 'waitMs');
      const lastEventId = parseLastEventId(req.headers['last-event-id']);
      if (!lastEventId.ok) {
        throw new GatewayError('bad_request', lastEventId.failure.message, 'Last-Event-ID');
      }
      const input = parseRunAgentInput(await readJsonBody(req, deps.maxBodyBytes));
      // The client may leave while the run is awaited (`waitMs`): its slot goes with it.
      const gone = new AbortController();
      res.once('close', () => gone.abort());
      const stream = await deps.gateway.openAguiStream({
        userId: user.userId,
        runId: input.runId,
        position: lastEventId.value,
        requestMessages: input.messages,
        ...(input.threadId !== undefined ? { threadId: input.threadId } : {}),
        waitMs,
        expiresAt: user.expiresAt,
        signal: gone.signal,
      });
      if (gone.signal.aborted) {
        stream.abandon();
        return;
      }
      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-store',
        // Proxies that buffer responses (nginx) would hold the events back.
        'X-Accel-Buffering': 'no',
      });
      res.once('close', () => stream.abandon());
      stream.attach(sseSink(res, closeTimeoutMs));
    },
    { query: ['waitMs'] },
  );
}

/**
 * The fields of a RunAgentInput the route reads: `runId` (an agentsocket run
 * id), `threadId` and `messages` (AG-UI messages, kept in front of the run's
 * in MESSAGES_SNAPSHOT, so each must be one the client's schema accepts).
 */
export function parseRunAgentInput(body: unknown): RunAgentRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new GatewayError('bad_request', 'the body must be a RunAgentInput object', 'body');
  }
  const { runId, threadId, messages } = body as Record<string, unknown>;
  if (typeof runId !== 'string' || !REF_PATTERN.test(runId)) {
    throw new GatewayError(
      'bad_request',
      'runId must be 1-128 characters of [A-Za-z0-9._:@/+=-]',
      'runId',
    );
  }
  const request: RunAgentRequest = { runId, messages: [] };
  if (threadId !== undefined) {
    if (typeof threadId !== 'string' || threadId.length > MAX_THREAD_ID_LENGTH) {
      throw new GatewayError(
        'bad_request',
        `threadId must be a string of at most ${MAX_THREAD_ID_LENGTH} characters`,
        'threadId',
      );
    }
    request.threadId = threadId;
  }
  if (messages !== undefined) {
    if (!Array.isArray(messages)) {
      throw new GatewayError('bad_request', 'messages must be an array', 'messages');
    }
    request.messages = messages.map((message: unknown, index) => {
      const parsed = MessageSchema.safeParse(message);
      if (!parsed.success) {
        throw new GatewayError(
          'bad_request',
          `messages[${index}] is not an AG-UI message`,
          `messages[${index}]`,
        );
      }
      return parsed.data as Message;
    });
  }
  return request;
}

/** The response as a stream writes to it; an ended response is cut after `closeTimeoutMs`. */
function sseSink(res: ServerResponse, closeTimeoutMs: number): SseSink {
  return {
    write: (chunk) => void res.write(chunk),
    get bufferedBytes() {
      return res.writableLength;
    },
    get needsDrain() {
      return res.writableNeedDrain;
    },
    end: () => {
      res.end();
      // A reader that stopped reading would hold the socket for as long as it likes.
      const timer = setTimeout(() => res.destroy(), closeTimeoutMs);
      timer.unref();
      res.once('close', () => clearTimeout(timer));
    },
    onDrain: (listener) => void res.on('drain', listener),
  };
}
