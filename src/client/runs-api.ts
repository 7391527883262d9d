/**
 * The runs routes of the gateway's HTTP API, as the browser calls them with
 * the user's token (`Authorization: Bearer <jwt>`): `GET /v1/runs?limit=`
 * (the user's recent runs, newest first) and `GET /v1/runs/{runId}`.
 */
import type { RunSnapshot } from '../runs/run-types.js';
import { RunsRequestError } from './client-errors.js';
import { parseSocketUrl } from './client-options.js';

/** Most runs one `fetchRuns` asks for: the gateway's maximum. */
export const MAX_FETCH_RUNS = 100;
/** Runs `fetchRuns` asks for when not told: the gateway's default. */
export const DEFAULT_FETCH_RUNS = 20;

/** The part of `fetch` the SDK uses: browsers and Node 20 have it. */
export type FetchLike = (
  url: string,
  init: { headers: Record<string, string>; signal: AbortSignal },
) => Promise<{
  ok: boolean;
  status: number;
  json(): Promise<unknown>;
}>;

/**
 * The HTTP API's base URL from the WebSocket URL: `wss:` → `https:`, `ws:` →
 * `http:`, and a path that ends in `/v1/ws` loses that end (a gateway mounted
 * under a prefix keeps it). Query and fragment go.
 *
 * @example
 * httpBaseFromSocketUrl('wss://example.com/chat/v1/ws?x=1'); // 'https://example.com/chat'
 */
export function httpBaseFromSocketUrl(socketUrl: string): string {
  const url = parseSocketUrl(socketUrl);
  const protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  const prefix = url.pathname.endsWith('/v1/ws') ? url.pathname.slice(0, -'/v1/ws'.length) : '';
  return `${protocol}//${url.host}${prefix}`;
}

export interface RunsRequest {
  /** The HTTP API's base URL (no trailing `/v1`). */
  base: string;
  token: string;
  fetch: FetchLike;
  timeoutMs: number;
}

async function getJson(request: RunsRequest, path: string): Promise<unknown> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), request.timeoutMs);
  const url = `${request.base.replace(/\/+$/, '')}${path}`;
  try {
    let res: Awaited<ReturnType<FetchLike>>;
    try {
      res = await request.fetch(url, {
        headers: { Authorization: `Bearer ${request.token}`, Accept: 'application/json' },
        signal: controller.signal,
      });
    } catch (cause) {
      const why = controller.signal.aborted ? `no answer within ${request.timeoutMs} ms` : 'failed';
      throw new RunsRequestError(`GET ${path} ${why}`, 0, undefined, { cause });
    }
    const body = await res.json().catch(() => null);
    if (!res.ok) {
      const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
      const code = typeof error?.code === 'string' ? error.code : undefined;
      const message = typeof error?.message === 'string' ? `: ${error.message}` : '';
      throw new RunsRequestError(`GET ${path} answered ${res.status}${message}`, res.status, code);
    }
    return body;
  } finally {
    clearTimeout(timer);
  }
}

function isSnapshot(value: unknown): value is RunSnapshot {
  const run = value as Partial<RunSnapshot> | null;
  return (
    typeof run === 'object' &&
    run !== null &&
    typeof run.runId === 'string' &&
    typeof run.epoch === 'string' &&
    typeof run.upToSeq === 'number' &&
    Array.isArray(run.parts)
  );
}

/** `GET /v1/runs?limit=`: the user's recent runs, newest first. */
export async function requestRuns(request: RunsRequest, limit: number): Promise<RunSnapshot[]> {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_FETCH_RUNS) {
    throw new RangeError(`limit must be an integer from 1 to ${MAX_FETCH_RUNS}, got ${limit}`);
  }
  const body = await getJson(request, `/v1/runs?limit=${limit}`);
  const runs = (body as { runs?: unknown } | null)?.runs;
  if (!Array.isArray(runs) || !runs.every(isSnapshot)) {
    throw new RunsRequestError('GET /v1/runs: the answer is not {runs: RunSnapshot[]}', 200);
  }
  return runs;
}

/** `GET /v1/runs/{runId}`: one run; null when the gateway has none of that id for the user. */
export async function requestRun(request: RunsRequest, runId: string): Promise<RunSnapshot | null> {
  let body: unknown;
  try {
    body = await getJson(request, `/v1/runs/${encodeURIComponent(runId)}`);
  } catch (error) {
    if (error instanceof RunsRequestError && error.status === 404) return null;
    throw error;
  }
  const run = (body as { run?: unknown } | null)?.run;
  if (!isSnapshot(run)) {
    throw new RunsRequestError('GET /v1/runs/{runId}: the answer is not {run: RunSnapshot}', 200);
  }
  return run;
}
