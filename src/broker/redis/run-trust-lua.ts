/**
 * Run grammar states that a Redis restart may have lost or rolled back, for
 * the publish script (`scripts.ts`). RUN_GUARD moves a stream to a new epoch
 * when the restart cannot prove that every acknowledged write is on disk; the
 * run states of that stream are then as unproven as its seq: a crash from an
 * RDB taken mid-run brings back a state from before the run's last events, or
 * none at all. Refusing the run's next events on such a state would break
 * every run in flight, so they are checked in `warn` mode instead, and the
 * state is rebuilt from what is accepted: stamped with the new epoch, it is
 * trusted again, and the run's later events are checked as before.
 *
 * A stored state is `<stamp> <state JSON>`, where the stamp is the epoch of
 * the step that wrote it, followed by `~` when the state was carried across
 * a move (a state written before the stamp existed is the bare JSON, which
 * starts with `{`). The JSON is the one `run-grammar-lua.ts` checks, unchanged.
 *
 * How far a state is doubted (`run_state_doubt`):
 * - 2, all of it: the stream moved (`mv` in the meta) since the state was
 *   written, or the state is missing and the last move (`mt`, server ms) is
 *   younger than `runTtlMs` (past that, a lost state would have expired
 *   anyway). Every rule only warns; the state is rebuilt and marked `~`.
 * - 1, its tool calls: a state marked `~`. It may still list calls the crash
 *   lost the completion of, or miss calls the crash lost the start of, so
 *   `tool_call_unknown`, `tool_calls_open` and `tool_calls_limit` only warn;
 *   the other rules (an event after the end, a reused id, a second start)
 *   are certain and refuse as before.
 * - 0: the state is trusted, as is any run started after the move.
 */

/**
 * Lua definitions to embed after RUN_GRAMMAR_LUA and the prelude (locals only;
 * they read the prelude's `meta`, the meta key of the user being stepped):
 *
 * - `run_state_split(stored)` -> `stamp, state_json` (`false` for what is missing);
 * - `run_state_doubt(stamp, state_json, epoch, run_ttl)` -> 0, 1 or 2 (above);
 * - `run_grammar_doubted(doubt, code)` -> whether a refusal only warns;
 * - `run_grammar_rebuild(state_json, event, arg)` -> `next_json, open_json`:
 *   the state after an event accepted on a doubted state: the grammar's,
 *   when the event is valid on it (on a missing state: on a run just
 *   started); else the run ends on `agent_completed`, and stays as it was on
 *   any other event.
 */
export const RUN_TRUST_LUA = `
local RUN_TOOL_CALL_CODES = { tool_call_unknown = true, tool_calls_open = true, tool_calls_limit = true }

local function run_state_split(stored)
  if not stored then return false, false end
  if string.sub(stored, 1, 1) == '{' then return false, stored end
  local space = string.find(stored, ' ', 1, true)
  return string.sub(stored, 1, space - 1), string.sub(stored, space + 1)
end

local function run_state_doubt(stamp, state_json, epoch, run_ttl)
  if stamp == epoch then return 0 end
  if stamp == epoch .. '~' then return 1 end
  if redis.call('HGET', meta, 'mv') then
    if state_json then return 2 end
    local moved_at = tonumber(redis.call('HGET', meta, 'mt') or '0')
    local now = redis.call('TIME')
    if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - moved_at < run_ttl then
      return 2
    end
    return 0
  end
  if stamp and string.sub(stamp, -1) == '~' then return 1 end
  return 0
end

local function run_grammar_doubted(doubt, code)
  return doubt == 2 or (doubt == 1 and RUN_TOOL_CALL_CODES[code] == true)
end

local function run_grammar_rebuild(state_json, event, arg)
  local base = state_json
  if not base and event ~= 'agent_started' then base = run_grammar_encode(false, {}, {}) end
  local ok, a, b = run_grammar_check(base, event, arg)
  if ok == 1 then return a, b end
  if event == 'agent_completed' then return run_grammar_encode(true, {}, {}), '' end
  return base, ''
end
`;
