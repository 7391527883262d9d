/**
 * Error codes of protocol v1: the `code` of every JSON error body
 * (`{"error":{"code","message"}}`) and of every `error` frame.
 *
 * One table: each code with its HTTP status (for HTTP answers and handshake
 * refusals) and what it means. `docs/errors.md` mirrors it; a test keeps them
 * in step.
 */
export const ERROR_CODES = {
  bad_request: { status: 400, meaning: 'malformed request, query or body; the field is named' },
  unauthorized: {
    status: 401,
    meaning: 'token or API key missing, malformed, badly signed, expired or not yet valid',
  },
  forbidden: { status: 403, meaning: 'origin not allowed, or user blocked' },
  not_found: { status: 404, meaning: 'no such route' },
  method_not_allowed: { status: 405, meaning: 'the route exists but not with this method' },
  payload_too_large: { status: 413, meaning: 'body, batch or event data over its limit' },
  unsupported_media_type: { status: 415, meaning: 'body is not application/json' },
  // The run grammar (protocol 1.1, src/runs/run-grammar.ts): an event with a
  // `runId` that its run cannot take. Nothing is delivered and no seq is used.
  run_finished: { status: 409, meaning: 'the run already ended with agent_completed' },
  run_already_started: { status: 409, meaning: 'the run already has its agent_started' },
  run_not_started: { status: 409, meaning: 'the first event of a run must be agent_started' },
  tool_call_duplicate: {
    status: 409,
    meaning: 'tool_executing with a toolCallId this run already used',
  },
  tool_call_unknown: {
    status: 409,
    meaning: 'tool_completed without an open tool_executing of that toolCallId',
  },
  tool_calls_open: {
    status: 409,
    meaning: 'agent_completed succeeded while tool calls are open; the message lists them',
  },
  tool_calls_limit: {
    status: 409,
    meaning: 'tool_executing while 1024 tool calls of the run are open',
  },
  too_many_connections: {
    status: 429,
    meaning: 'per-user or per-IP connection limit reached',
  },
  rate_limited: { status: 429, meaning: 'per-IP handshake rate exceeded' },
  too_many_waits: {
    status: 429,
    meaning: 'publishes waiting for delivery (`wait`) at the per-user or per-node limit',
  },
  internal: { status: 500, meaning: 'unexpected server error; logged with a request id' },
  unavailable: { status: 503, meaning: 'draining for shutdown, or the broker is unreachable' },
  // Codes that only appear in `error` frames on an open connection.
  bad_frame: { status: 400, meaning: 'client frame is not valid JSON or not a known frame' },
  bad_ack: { status: 400, meaning: 'ack for a seq that this connection was never sent' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export function statusOf(code: ErrorCode): number {
  return ERROR_CODES[code].status;
}

/** The JSON body of every HTTP error and handshake refusal. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; field?: string };
}
