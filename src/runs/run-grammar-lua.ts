/**
 * The run grammar of `run-grammar.ts`, in Lua, for the Redis engine's publish
 * script: checked in the same script that assigns the seq, so two nodes cannot
 * both accept, say, a second `agent_completed` of one run. Same rules, same
 * codes, same messages, same JSON state (test/unit/runs-grammar-lua.test.ts
 * runs random event sequences through both and compares every verdict).
 *
 * The state is written by hand rather than with `cjson.encode`, which turns an
 * empty list into `{}`; ids go through `cjson.encode` one by one, so they are
 * escaped as JSON strings (cjson also escapes `/` as `\/`, which JSON readers
 * read back as `/`). Its keys come in one order, `finished` first (as
 * `encodeRunGrammarState` writes them too): a delta, the common event, is
 * checked by looking at that prefix, without decoding the state.
 */
import {
  RUN_MAX_OPEN_TOOL_CALLS,
  RUN_MESSAGE_MAX_IDS,
  RUN_TOOL_CALL_WINDOW,
} from './run-grammar.js';

/**
 * Lua definitions to embed at the top of a script (locals only, nothing runs):
 *
 * `run_grammar_check(state_json, event, arg)` where `state_json` is the run's
 * state as stored (`false` when the run has none, which is what `GET` answers
 * for a missing key) and `arg` is `runGrammarArg(event, data)`. Returns
 * - `1, next_json, open_json` when accepted: `next_json` is the state to store
 *   (the same string when nothing changed), `open_json` a JSON list of the
 *   tool calls a `failed`/`cancelled` completion left open, or '';
 * - `0, code, message` when refused.
 *
 * @example
 * const script = `${RUN_GRAMMAR_LUA}
 * local ok, a, b = run_grammar_check(redis.call('GET', KEYS[4]), ARGV[3], ARGV[13])
 * if ok == 0 then return {0, a, b} end
 * -- ...assign the seq, append, then:
 * redis.call('SET', KEYS[4], a, 'PX', ARGV[14])`;
 */
export const RUN_GRAMMAR_LUA = `
local RUN_TOOL_CALL_WINDOW = ${RUN_TOOL_CALL_WINDOW}
local RUN_MAX_OPEN_TOOL_CALLS = ${RUN_MAX_OPEN_TOOL_CALLS}
local RUN_MESSAGE_MAX_IDS = ${RUN_MESSAGE_MAX_IDS}

local function run_grammar_list(ids)
  local out = {}
  for i = 1, #ids do out[i] = cjson.encode(ids[i]) end
  return '[' .. table.concat(out, ',') .. ']'
end

local function run_grammar_encode(finished, open, used)
  return '{"finished":' .. (finished and 'true' or 'false') .. ',"open":' ..
    run_grammar_list(open) .. ',"used":' .. run_grammar_list(used) .. '}'
end

local function run_grammar_find(ids, id)
  for i = 1, #ids do
    if ids[i] == id then return i end
  end
  return nil
end

local function run_grammar_check(state_json, event, arg)
  if not state_json then
    if event ~= 'agent_started' then
      return 0, 'run_not_started', 'the first event of a run must be agent_started, not ' .. event
    end
    return 1, run_grammar_encode(false, {}, {}), ''
  end
  if event ~= 'agent_started' and event ~= 'tool_executing' and event ~= 'tool_completed'
    and event ~= 'agent_completed' then
    -- Deltas and other events need only \`finished\`, the state's first field
    -- in the one way both encoders write it: no decode per delta.
    if string.sub(state_json, 1, 16) == '{"finished":true' then
      return 0, 'run_finished', 'the run already ended with agent_completed; ' .. event .. ' cannot follow it'
    end
    return 1, state_json, ''
  end
  local state = cjson.decode(state_json)
  if state.finished then
    return 0, 'run_finished', 'the run already ended with agent_completed; ' .. event .. ' cannot follow it'
  end
  local open, used = state.open, state.used
  if event == 'agent_started' then
    return 0, 'run_already_started', 'the run already has its agent_started'
  elseif event == 'tool_executing' then
    if run_grammar_find(open, arg) or run_grammar_find(used, arg) then
      return 0, 'tool_call_duplicate', 'toolCallId "' .. arg .. '" was already used in this run'
    end
    if #open >= RUN_MAX_OPEN_TOOL_CALLS then
      return 0, 'tool_calls_limit', RUN_MAX_OPEN_TOOL_CALLS ..
        ' tool calls of this run are open; complete one before starting another'
    end
    open[#open + 1] = arg
    used[#used + 1] = arg
    while #used > RUN_TOOL_CALL_WINDOW do table.remove(used, 1) end
    return 1, run_grammar_encode(false, open, used), ''
  elseif event == 'tool_completed' then
    local index = run_grammar_find(open, arg)
    if not index then
      return 0, 'tool_call_unknown', 'tool_completed for toolCallId "' .. arg .. '" without an open tool_executing'
    end
    table.remove(open, index)
    return 1, run_grammar_encode(false, open, used), ''
  elseif event == 'agent_completed' then
    if arg == 'succeeded' and #open > 0 then
      local named = {}
      for i = 1, math.min(#open, RUN_MESSAGE_MAX_IDS) do named[i] = open[i] end
      local list = table.concat(named, ', ')
      if #open > RUN_MESSAGE_MAX_IDS then
        list = list .. ', and ' .. (#open - RUN_MESSAGE_MAX_IDS) .. ' more'
      end
      return 0, 'tool_calls_open', 'agent_completed succeeded while tool calls are open: ' .. list
    end
    local left = ''
    if #open > 0 then left = run_grammar_list(open) end
    return 1, run_grammar_encode(true, {}, {}), left
  end
  return 1, state_json, ''
end
`;
