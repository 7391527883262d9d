/**
 * The run grammar (protocol 1.1): which events a run can take next, as a pure
 * state machine over a small JSON state, so an engine checks it atomically
 * with seq assignment (in-process in the memory engine, inside the publish
 * script on Redis: `run-grammar-lua.ts` is the same machine in Lua, and
 * test/unit/runs-grammar-lua.test.ts proves the two agree).
 *
 * A run is the events of one user with one `runId`; events without a `runId`
 * are not subject to the grammar (the caller does not ask). The rules:
 * - the first event of a run is `agent_started` (`run_not_started`);
 * - one `agent_started` per run (`run_already_started`);
 * - nothing after the run's `agent_completed` (`run_finished`);
 * - `tool_executing` with a `toolCallId` the run already used (`tool_call_duplicate`);
 * - `tool_completed` without an open `tool_executing` of its id (`tool_call_unknown`);
 * - `agent_completed {status:"succeeded"}` while tool calls are open
 *   (`tool_calls_open`, the message names them); `failed`/`cancelled` are
 *   accepted and the verdict lists `openToolCalls`.
 *
 * Bounds (the state lives beside each run, read and written per event):
 * - at most {@link RUN_MAX_OPEN_TOOL_CALLS} tool calls open at once; one more
 *   `tool_executing` is refused (`tool_calls_limit`) until one completes;
 * - duplicates are detected among the open calls and the last
 *   {@link RUN_TOOL_CALL_WINDOW} started ones: an id reused after that many
 *   newer tool calls is accepted (a run with more tool calls stays publishable
 *   and its state stays bounded);
 * - ids are 1-128 characters (`MAX_AGENT_REF_LENGTH`, checked at validation),
 *   so the state is at most about 2 × 1024 × 128 characters plus escapes.
 * A finished run's state forgets its tool calls: only `finished` matters then.
 *
 * For the engines: an idempotent repeat (an `id` already published) is
 * answered before the grammar is asked, so it is never a violation; a refused
 * event consumes no seq and its state is not written. Keep a run's state at
 * least as long as its snapshot (its TTL refreshed per event): a state that
 * expires mid-run makes the run's next event `run_not_started`.
 */
import type { ErrorCode } from '../protocol/error-codes.js';
import type { JsonValue } from '../protocol/frames.js';

/** How many of the latest started tool calls the duplicate check remembers. */
export const RUN_TOOL_CALL_WINDOW = 1024;
/** How many tool calls of one run may be open at once. */
export const RUN_MAX_OPEN_TOOL_CALLS = 1024;
/** How many open tool call ids the `tool_calls_open` message names before "and N more". */
export const RUN_MESSAGE_MAX_IDS = 10;

export type RunGrammarCode = Extract<
  ErrorCode,
  | 'run_finished'
  | 'run_already_started'
  | 'run_not_started'
  | 'tool_call_duplicate'
  | 'tool_call_unknown'
  | 'tool_calls_open'
  | 'tool_calls_limit'
>;

/** Every code the grammar answers with (each in ERROR_CODES with status 409). */
export const RUN_GRAMMAR_CODES: readonly RunGrammarCode[] = [
  'run_finished',
  'run_already_started',
  'run_not_started',
  'tool_call_duplicate',
  'tool_call_unknown',
  'tool_calls_open',
  'tool_calls_limit',
];

/**
 * The grammar's state of one started run; `undefined` before its
 * `agent_started`. Plain JSON (`encodeRunGrammarState`), the same shape the
 * Lua version reads and writes on Redis.
 */
export interface RunGrammarState {
  /** True once the run's `agent_completed` was accepted: nothing more is. */
  finished: boolean;
  /** `toolCallId`s started and not completed yet, oldest first. */
  open: string[];
  /** The last {@link RUN_TOOL_CALL_WINDOW} `toolCallId`s started, oldest first. */
  used: string[];
}

export type RunGrammarVerdict =
  | {
      ok: true;
      /** The state after the event; the same object when the event changed nothing. */
      next: RunGrammarState;
      /** For an accepted `failed`/`cancelled` completion: the tool calls it left open. */
      openToolCalls?: string[];
    }
  | { ok: false; code: RunGrammarCode; message: string };

/**
 * The one value of `data` the grammar looks at: `toolCallId` for the tool
 * events, `status` for `agent_completed`, '' for any other event. The Redis
 * engine passes it to the script as an argument, so Lua never parses `data`.
 */
export function runGrammarArg(event: string, data: JsonValue): string {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return '';
  const key =
    event === 'tool_executing' || event === 'tool_completed'
      ? 'toolCallId'
      : event === 'agent_completed'
        ? 'status'
        : undefined;
  const value = key === undefined ? undefined : data[key];
  return typeof value === 'string' ? value : '';
}

function refuse(code: RunGrammarCode, message: string): RunGrammarVerdict {
  return { ok: false, code, message };
}

/** "a, b, c" or "a, …, j, and 5 more": the same text as the Lua version builds. */
export function listToolCallIds(ids: readonly string[]): string {
  const named = ids.slice(0, RUN_MESSAGE_MAX_IDS).join(', ');
  const more = ids.length - RUN_MESSAGE_MAX_IDS;
  return more > 0 ? `${named}, and ${more} more` : named;
}

/**
 * The grammar's verdict on one event of a run, given the run's state before it
 * (`undefined` when the run has none yet). `data` is the validated event data.
 * Pure: `state` is never changed.
 *
 * @example
 * let state: RunGrammarState | undefined;
 * const verdict = checkRunEvent(state, 'agent_started', { agent: 'a' });
 * if (!verdict.ok) throw new GatewayError(verdict.code, verdict.message);
 * state = verdict.next;
 */
export function checkRunEvent(
  state: RunGrammarState | undefined,
  event: string,
  data: JsonValue,
): RunGrammarVerdict {
  return checkRunEventArg(state, event, runGrammarArg(event, data));
}

/** {@link checkRunEvent} with `data` already reduced by {@link runGrammarArg}. */
export function checkRunEventArg(
  state: RunGrammarState | undefined,
  event: string,
  arg: string,
): RunGrammarVerdict {
  if (state === undefined) {
    if (event !== 'agent_started') {
      return refuse(
        'run_not_started',
        `the first event of a run must be agent_started, not ${event}`,
      );
    }
    return { ok: true, next: { finished: false, open: [], used: [] } };
  }
  if (state.finished) {
    return refuse(
      'run_finished',
      `the run already ended with agent_completed; ${event} cannot follow it`,
    );
  }
  switch (event) {
    case 'agent_started':
      return refuse('run_already_started', 'the run already has its agent_started');
    case 'tool_executing': {
      if (state.open.includes(arg) || state.used.includes(arg)) {
        return refuse('tool_call_duplicate', `toolCallId "${arg}" was already used in this run`);
      }
      if (state.open.length >= RUN_MAX_OPEN_TOOL_CALLS) {
        return refuse(
          'tool_calls_limit',
          `${RUN_MAX_OPEN_TOOL_CALLS} tool calls of this run are open; complete one before starting another`,
        );
      }
      const used = [...state.used, arg];
      if (used.length > RUN_TOOL_CALL_WINDOW) used.splice(0, used.length - RUN_TOOL_CALL_WINDOW);
      return { ok: true, next: { finished: false, open: [...state.open, arg], used } };
    }
    case 'tool_completed': {
      const index = state.open.indexOf(arg);
      if (index < 0) {
        return refuse(
          'tool_call_unknown',
          `tool_completed for toolCallId "${arg}" without an open tool_executing`,
        );
      }
      const open = state.open.slice();
      open.splice(index, 1);
      return { ok: true, next: { finished: false, open, used: state.used } };
    }
    case 'agent_completed': {
      const open = state.open;
      if (arg === 'succeeded' && open.length > 0) {
        return refuse(
          'tool_calls_open',
          `agent_completed succeeded while tool calls are open: ${listToolCallIds(open)}`,
        );
      }
      const next: RunGrammarState = { finished: true, open: [], used: [] };
      return open.length > 0 ? { ok: true, next, openToolCalls: open.slice() } : { ok: true, next };
    }
    default:
      return { ok: true, next: state };
  }
}

/** The state as JSON, keys in the order the Lua version writes them. */
export function encodeRunGrammarState(state: RunGrammarState): string {
  return JSON.stringify({ finished: state.finished, open: state.open, used: state.used });
}

/** Reads a state written by {@link encodeRunGrammarState} or the Lua version; throws on anything else. */
export function decodeRunGrammarState(json: string): RunGrammarState {
  const value: unknown = JSON.parse(json);
  const isIds = (ids: unknown): ids is string[] =>
    Array.isArray(ids) && ids.every((id) => typeof id === 'string');
  if (typeof value === 'object' && value !== null) {
    const { finished, open, used } = value as Record<string, unknown>;
    if (typeof finished === 'boolean' && isIds(open) && isIds(used)) {
      return { finished, open, used };
    }
  }
  throw new Error('not a run grammar state');
}
