/**
 * The publish script: one call appends a batch of events, of one user or of
 * many (`publish-batch.ts` groups the publishes of one event-loop turn), each
 * one step as before: the call runs atomically on the Redis that owns every
 * key it is given (on Redis Cluster the batch holds the users of one hash
 * slot). Keys and fields: `scripts.ts`.
 *
 * Why a batch: most of the script's cost on redis-server is fixed per call
 * (the call machinery for its arguments, and running the prelude: the ~20
 * `local function` definitions of the run grammar, run trust and trims),
 * not per event. A batch pays it once.
 */
import { RUN_GRAMMAR_LUA } from '../../runs/run-grammar-lua.js';
import { USER_KEY_SUFFIX } from './keys.js';
import { RUN_TRUST_LUA } from './run-trust-lua.js';
import { PRELUDE } from './stream-lua.js';

/** Keys per event in the publish script on one Redis: the meta key. */
export const PUBLISH_KEYS_PER_EVENT = 1;
/**
 * Keys per event on Redis Cluster: every key the event may touch, declared
 * (meta, hist, ids, conns, the run's state and log, the user's runs). During
 * a slot migration Redis checks a script's declared keys before it runs
 * (and redirects the call); an undeclared key of the migrating slot fails
 * inside the script instead ("Script attempted to access a non local key").
 */
export const PUBLISH_CLUSTER_KEYS_PER_EVENT = 7;
/** Arguments per event in the publish script. */
export const PUBLISH_ARGS_PER_EVENT = 12;
/** The batch's constant arguments, before the events'. */
export const PUBLISH_CONSTANT_ARGS = 9;

/**
 * KEYS, per event: on one Redis its user's meta key (`RedisKeys.meta`); on
 * Redis Cluster that key first, then the six others it may touch
 * (`PUBLISH_CLUSTER_KEYS_PER_EVENT`), for the slot checks only. The script
 * derives the user's other keys and channel from the meta key
 * (`USER_KEY_SUFFIX`): they share its hash tag, so its slot. On one Redis a
 * call so carries one key name per event instead of seven, and no channel
 * or run key base (their names were most of a small event's bytes).
 * ARGV: the batch's constants first: 1 historySize, 2 historyTtlMs, 3 cutoff
 * ts (older entries are dropped), 4 metaTtlMs, 5 now (ms: presence records
 * past it are not counted), 6 runTtlMs, 7 maxRunsPerUser, 8 the number of
 * events, 9 keys per event (1 or 7); then 12 per event (event i from
 * `9 + 12 * (i - 1)`): 1 new epoch,
 * 2 event id, 3 event name, 4 critical (1/0), 5 ts, 6 payload, 7 awaitedBy
 * or '', 8 1 when the engine generated the event id (it cannot repeat
 * anything: no idempotency read or entry), else 0, 9 run id ('' for an
 * event outside a run), 10 the grammar's argument (`runGrammarArg`),
 * 11 grammar mode (`strict`, `warn`, `off`), 12 the run log record after its
 * `{"seq":…,"epoch":…,"ts":…` head; then the two of RUN_GUARD (always last).
 *
 * Events run in the order given, each as a whole before the next: the events
 * of one user keep their publish order and each draws its seq in turn.
 * Order inside one event: idempotency (a repeat is answered first, so it is
 * never a violation; a repeat of an event earlier in the same batch is one
 * too), then the run grammar (a refusal in strict mode returns before the
 * seq is drawn: nothing stored, sent or used, and the batch goes on; a state
 * a Redis restart may have lost is checked in warn mode and rebuilt,
 * `run-trust-lua.ts`), then seq, append, fan-out, and the run's state, log
 * and index.
 *
 * Returns one reply per event, in order: {seq, epoch, 0 new | 1 duplicate,
 * connections}, followed for an event of a run by {open tool calls (JSON
 * list or ''), violation code or '', violation message or '', run log
 * length}, or {0, epoch, 2, 0, code, message} when strict mode refused the
 * event, or {-1, error message} when the event raised an error (a command
 * refused on its keys, OOM before the call's first write, RUN_GUARD's
 * arguments): the error is that event's alone, and its writes before the
 * error stay, as they did when an event was a call of its own (Redis does
 * not roll a script back). Errors of the call itself (NOSCRIPT, BUSY, a
 * redirect, a timeout, a link that drops) fail every event of the batch.
 * Publishes `epoch\nseq\nid\nevent\ncritical\nts\nawaitedBy\npayload` per event.
 */
export const PUBLISH_SCRIPT = `${PRELUDE}
${RUN_GRAMMAR_LUA}
${RUN_TRUST_LUA}
local history_size = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local cutoff = tonumber(ARGV[3])
local meta_ttl = tonumber(ARGV[4])
local now = tonumber(ARGV[5])
local run_ttl = tonumber(ARGV[6])
local max_runs = tonumber(ARGV[7])
local count = tonumber(ARGV[8])
local keys_per_event = tonumber(ARGV[9])
if count == nil or (keys_per_event ~= ${PUBLISH_KEYS_PER_EVENT} and keys_per_event ~= ${PUBLISH_CLUSTER_KEYS_PER_EVENT})
  or #KEYS ~= count * keys_per_event or #ARGV ~= ${PUBLISH_CONSTANT_ARGS} + count * ${PUBLISH_ARGS_PER_EVENT} + 2 then
  error('PUBLISH: the keys and arguments do not match the number of events')
end
-- TTLs: set to their span, but not on every event: only when the meta's
-- \`x\` (Redis time, ms, when the stream's TTLs were last set) is more than
-- \`slack\` (1 % of the span, at most 1 s) old, or when the stream was empty
-- (a stream emptied by the trims was deleted and is made again without a
-- TTL). A user's keys live their span after the last publish, less at most
-- \`slack\`. The stamp comes with the meta's other fields (one HMGET): no
-- per-event PTTL. Redis's clock, not the node's: nodes' clocks differ.
local slack = math.min(1000, math.floor(ttl / 100))
-- Redis TIME in ms, read once per call when a stamp is first needed.
local clock = false
local function redis_now()
  if not clock then
    local t = redis.call('TIME')
    clock = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return clock
end
-- Presence counts by directory key: nothing else runs during the call, so a
-- user's count is the same for each of its events in the batch.
local counted = {}
-- What the call knows of a user's stream after one of its events, by meta
-- key: {epoch, age bound, length, TTLs set, stamp}. Nothing else writes these
-- keys during the call (and Redis does not expire keys while a script runs),
-- so the user's next events skip the reads (HMGET, XLEN). Forgotten when an
-- event of the user fails halfway.
local streams = {}

local function count_connections(key)
  local known = counted[key]
  if known ~= nil then return known end
  local connections = 0
  local records = redis.call('HVALS', key)
  for i = 1, #records do
    local deadline = tonumber(string.match(records[i], '^[^\\n]*\\n(%d+)\\n'))
    if deadline ~= nil and deadline > now then connections = connections + 1 end
  end
  counted[key] = connections
  return connections
end

local function index_run(runs, run_id, ts, log_length, base)
  -- The index orders runs by last update: a score above every other run's,
  -- so events within one ms still order their runs as they came.
  local score = ts
  local top = redis.call('ZREVRANGE', runs, 0, 0, 'WITHSCORES')
  if top[1] ~= nil and tonumber(top[2]) >= score then
    score = top[1] == run_id and tonumber(top[2]) or tonumber(top[2]) + 1
  end
  redis.call('ZADD', runs, score, run_id)
  redis.call('PEXPIRE', runs, run_ttl)
  if log_length == 1 then
    -- A new run: forget the runs whose keys expired, then drop the least
    -- recently updated ones past the bound (never this one).
    redis.call('ZREMRANGEBYSCORE', runs, '-inf', '(' .. (ts - run_ttl))
    local excess = redis.call('ZCARD', runs) - max_runs
    if excess > 0 then
      for _, old in ipairs(redis.call('ZRANGE', runs, 0, excess)) do
        if excess > 0 and old ~= run_id then
          -- The same hash tag as KEYS: the keys of one user share a slot.
          redis.call('DEL', base .. old .. ':state', base .. old .. ':log')
          redis.call('ZREM', runs, old)
          excess = excess - 1
        end
      end
    end
  end
end

-- The meta key ends with its suffix; the user's other keys share the rest.
local meta_suffix_length = ${USER_KEY_SUFFIX.meta.length}

local function publish_one(k, a)
  meta = KEYS[k + 1]
  local base = string.sub(meta, 1, -meta_suffix_length - 1)
  hist, ids = base .. '${USER_KEY_SUFFIX.hist}', base .. '${USER_KEY_SUFFIX.ids}'
  local id, event, critical, ts = ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  local payload, awaited_by, generated = ARGV[a + 6], ARGV[a + 7], ARGV[a + 8] == '1'
  local known = streams[meta]
  -- Until this event is done, the call knows nothing sure of the stream.
  streams[meta] = nil
  local epoch, bound, kept, stamp
  if known then
    epoch, stamp = known.epoch, known.stamp
    kept, bound = trim(history_size, cutoff, known.bound, known.length)
  else
    epoch, bound, stamp = ensure(ARGV[a + 1], false)
    kept, bound = trim(history_size, cutoff, bound)
  end
  -- A generated id is new by construction (publishers cannot use its form):
  -- nothing to look up, and nothing to remember it by.
  if not generated then
    local first = redis.call('HGET', ids, id)
    if first then
      redis.call('PEXPIRE', meta, meta_ttl)
      streams[meta] = {epoch = epoch, bound = bound, length = kept, fresh = known and known.fresh, stamp = stamp}
      return {tonumber(first), epoch, 1, 0}
    end
  end
  local run_id, grammar_arg, mode = ARGV[a + 9], ARGV[a + 10], ARGV[a + 11]
  local run_base, run_state_key
  local run_stamp, run_state, run_next, run_open, run_code, run_message = false, false, false, '', '', ''
  local run_new_stamp = epoch
  if run_id ~= '' then
    run_base = base .. '${USER_KEY_SUFFIX.run}'
    run_state_key = run_base .. run_id .. ':state'
    run_stamp, run_state = run_state_split(redis.call('GET', run_state_key))
    local doubt = run_state_doubt(run_stamp, run_state, epoch, run_ttl)
    local ok, x, y = run_grammar_check(run_state, event, grammar_arg)
    if ok == 1 then
      run_next, run_open = x, y
      -- A state carried across a move stays doubted; a run started now does not.
      if doubt == 1 or (doubt == 2 and run_state) then run_new_stamp = epoch .. '~' end
    else
      local doubted = run_grammar_doubted(doubt, x)
      if mode == 'strict' and not doubted then
        redis.call('PEXPIRE', meta, meta_ttl)
        streams[meta] = {epoch = epoch, bound = bound, length = kept, fresh = known and known.fresh, stamp = stamp}
        return {0, epoch, 2, 0, x, y}
      end
      if mode ~= 'off' then run_code, run_message = x, y end
      if doubted then
        run_next, run_open = run_grammar_rebuild(run_state, event, grammar_arg)
        run_new_stamp = epoch .. '~'
      end
    end
  end
  local seq = redis.call('HINCRBY', meta, 'seq', 1)
  redis.call('XADD', hist, seq .. '-0', 'i', id, 'e', event, 'c', critical, 't', ts, 'a', awaited_by, 'p', payload)
  if not generated then
    redis.call('HSET', ids, id, seq)
    -- The hash may be new (the trims emptied it, or the stream held only
    -- generated ids): it gets its TTL now, whatever the stamp says.
    redis.call('PEXPIRE', ids, ttl)
  end
  -- The new entry is younger than the cutoff, which the trim above applied to
  -- the others: only the count can be past its limit now.
  local length = trimCount(kept + 1, history_size)
  -- The event is the stream's oldest: the age trim's bound is its ts.
  if kept == 0 then
    redis.call('HSET', meta, 'o', ts)
    bound = tonumber(ts)
  end
  -- An earlier event of the call left the TTLs fresh (\`fresh\`). A stamp
  -- ahead of Redis's clock (the clock stepped back) counts as stale.
  if kept == 0 or not (known and known.fresh) then
    local age = stamp and redis_now() - stamp
    if kept == 0 or not age or age > slack or age < 0 then
      stamp = redis_now()
      redis.call('PEXPIRE', hist, ttl)
      redis.call('PEXPIRE', ids, ttl)
      redis.call('PEXPIRE', meta, meta_ttl)
      redis.call('HSET', meta, 'x', stamp)
    end
  end
  redis.call('PUBLISH', base .. '${USER_KEY_SUFFIX.events}', epoch .. '\\n' .. seq .. '\\n' .. id .. '\\n' .. event .. '\\n' .. critical .. '\\n' .. ts .. '\\n' .. awaited_by .. '\\n' .. payload)
  local connections = count_connections(base .. '${USER_KEY_SUFFIX.conns}')
  streams[meta] = {epoch = epoch, bound = bound, length = length, fresh = true, stamp = stamp}
  if run_id == '' then return {seq, epoch, 0, connections} end
  if run_next and (run_next ~= run_state or run_stamp ~= run_new_stamp) then
    redis.call('SET', run_state_key, run_new_stamp .. ' ' .. run_next, 'PX', run_ttl)
  elseif run_state then
    redis.call('PEXPIRE', run_state_key, run_ttl)
  end
  local run_log = run_base .. run_id .. ':log'
  local log_length = redis.call('RPUSH', run_log, '{"seq":' .. seq .. ',"epoch":"' .. epoch .. '","ts":' .. ts .. ARGV[a + 12])
  redis.call('PEXPIRE', run_log, run_ttl)
  index_run(base .. '${USER_KEY_SUFFIX.runs}', run_id, tonumber(ts), log_length, run_base)
  return {seq, epoch, 0, connections, run_open, run_code, run_message, log_length}
end

local replies = {}
for i = 1, count do
  -- An error in one event (a command refused on its user's keys) is that
  -- event's reply: the others of the batch, often other users', go on.
  local ok, reply = pcall(publish_one, (i - 1) * keys_per_event, ${PUBLISH_CONSTANT_ARGS} + (i - 1) * ${PUBLISH_ARGS_PER_EVENT})
  if ok then
    replies[i] = reply
  else
    replies[i] = {-1, type(reply) == 'table' and reply.err or tostring(reply)}
  end
end
return replies
`;
