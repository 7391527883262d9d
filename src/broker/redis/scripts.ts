/**
 * The Lua scripts of the Redis engine, registered on a client with ioredis
 * `defineCommand` (`defineScripts`), which runs EVALSHA and falls back to EVAL
 * when the server lost its script cache (a restart). Each runs atomically on the Redis that
 * owns the user's hash slot, so "assign seq, append, trim, fan out" is one
 * step per user stream (Broker contract, point 1), even with many nodes.
 *
 * Keys of one user (all in one hash slot, see `redis-keys.ts`):
 * - KEYS[1] meta: hash `epoch`, `seq` (last assigned), `acked` (cursor);
 *   `o`, the ts of the oldest entry when the age trim last looked (`trim`);
 *   `r`, `mv`, `mt` of RUN_GUARD (a Redis restart that may have lost writes)
 * - KEYS[2] hist: stream, entry id `<seq>-0`, fields in this fixed order:
 *   `i` event id, `e` event name, `c` critical (1/0), `t` ts (ms),
 *   `a` awaitedBy ('' if none), `p` the event's payload (opaque: the
 *   gateway builds the frame from it, `protocol/event-frame.ts`)
 * - KEYS[3] ids: hash event id -> seq, one entry per stored event (an entry
 *   leaves with its event, so the hash is bounded by `historySize`)
 * - KEYS[4] conns (publish only): the user's presence directory, counted for
 *   `PublishOutcome.connections` in the same step
 * - KEYS[5..7] (publish only) the run of the event: its grammar state, its
 *   log (the snapshot's source, folded on read in TS: `runs.ts`) and the
 *   user's runs; they have their own TTL (`runTtlMs`): runs outlive history.
 *   The state is stamped with the epoch it was written in (`run-trust-lua.ts`)
 *
 * A missing meta means the stream is new or its data was lost (expiry, a
 * restart without persistence): the script creates it with the epoch the
 * caller drew at random, so old cursors are void and clients are told `gap`.
 *
 * The meta outlives the events (its TTL, `metaTtlMs`, is longer than
 * `historyTtlMs` and refreshed by publish (with the stream's TTL, see
 * PUBLISH_SCRIPT), read and ack): a user who stays
 * connected but idle keeps the epoch, and expired events show as a `gap` in
 * the same stream instead of a new stream (as in the memory broker).
 */
import type { Redis } from 'ioredis';
import { RUN_GRAMMAR_LUA } from '../../runs/run-grammar-lua.js';
import { RUN_TRUST_LUA } from './run-trust-lua.js';

/**
 * Moves a stream that a Redis restart may have rolled back to a new epoch
 * (see `persistence.ts`). The calling script's last two ARGV are the current
 * Redis run id and 1/0: its persistence proves that no acknowledged write is
 * lost. On Redis Cluster the run id is a comma-separated list: the identity
 * of the master the script runs on, then those of the other masters that
 * are up (a slot migrated from one of them arrived whole; `shard-watch.ts`). The meta hash keeps `r`, `<run id>:<1|0>` of its last step. A stream
 * last stepped under another run gets a new epoch unless both runs are
 * proven: the old one wrote every acknowledged step to disk, and the new one
 * loaded them back (a Redis switched to `appendonly no` at run time restarts
 * from its RDB, whatever the stamps say). The stream keeps its retained
 * events, seqs and acked cursor: they are the same events.
 * `mv` remembers the last 8 moves, `<epoch left> <its head then> …` oldest
 * first, so a cursor of an epoch left resumes after what it holds of the
 * retained events (`resumeAfter`: the least of its seq and every head since),
 * with `gap`. `mt` is the time of the last move (Redis `TIME`, ms): the run
 * states it may have lost are judged by it (`run-trust-lua.ts`).
 */
const RUN_GUARD = `
-- stamp: the meta's \`r\` as the caller read it (false when missing).
local function guardRun(epoch, newEpoch, stamp)
  local runs, proven = ARGV[#ARGV - 1], ARGV[#ARGV]
  if not string.match(runs, '^%x+[%x,]*$') or (proven ~= '1' and proven ~= '0') then
    error('RUN_GUARD: the last two arguments must be the Redis run id and 1/0')
  end
  local run = string.match(runs, '^%x+')
  if stamp == run .. ':' .. proven then return epoch end
  -- Runs after the first (Redis Cluster) wrote what they hold losslessly
  -- to the current one: a stream stamped by one of them did not restart.
  local restarted = stamp and not string.find(',' .. runs .. ',',
    ',' .. string.match(stamp, '^[^:]*') .. ',', 1, true)
  if restarted and (string.sub(stamp, -1) ~= '1' or proven ~= '1') then
    local head = redis.call('HGET', KEYS[1], 'seq')
    local moves = {}
    for token in string.gmatch(redis.call('HGET', KEYS[1], 'mv') or '', '%S+') do
      moves[#moves + 1] = token
    end
    moves[#moves + 1] = epoch
    moves[#moves + 1] = head
    local first = math.max(1, #moves - 15)
    local now = redis.call('TIME')
    redis.call('HSET', KEYS[1], 'epoch', newEpoch, 'mv', table.concat(moves, ' ', first),
      'mt', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
    epoch = newEpoch
  end
  redis.call('HSET', KEYS[1], 'r', run .. ':' .. proven)
  return epoch
end

local function resumeAfter(cursorEpoch, cursorSeq)
  local after, found = cursorSeq, false
  local left = nil
  for token in string.gmatch(redis.call('HGET', KEYS[1], 'mv') or '', '%S+') do
    if left == nil then
      left = token
    else
      if left == cursorEpoch then found = true end
      if found then after = math.min(after, tonumber(token)) end
      left = nil
    end
  end
  if found then return after end
  return 0
end
`;

/** Shared prelude: create-if-missing and the two trims (count, then age). */
const PRELUDE = `${RUN_GUARD}
local meta, hist, ids = KEYS[1], KEYS[2], KEYS[3]

-- metaTtl false: the caller refreshes the meta's TTL itself (the publish).
-- Returns the epoch and the meta's \`o\` (a ts no stored entry is older than,
-- as far as the age trim knows; nil when unknown).
local function ensure(newEpoch, metaTtl)
  local current = redis.call('HMGET', meta, 'epoch', 'r', 'o')
  local epoch = current[1]
  if not epoch then
    redis.call('DEL', hist, ids)
    redis.call('HSET', meta, 'epoch', newEpoch, 'seq', 0, 'acked', 0)
    epoch = newEpoch
  end
  epoch = guardRun(epoch, newEpoch, current[2])
  if metaTtl then redis.call('PEXPIRE', meta, metaTtl) end
  return epoch, current[3] and tonumber(current[3])
end

local function drop(entry)
  redis.call('HDEL', ids, entry[2][2])
  redis.call('XDEL', hist, entry[1])
end

-- Drops the oldest entries past maxLen, given the stream's length.
-- Returns the length left.
local function trimCount(length, maxLen)
  local excess = length - maxLen
  if excess > 0 then
    for _, entry in ipairs(redis.call('XRANGE', hist, '-', '+', 'COUNT', excess)) do
      drop(entry)
    end
    return maxLen
  end
  return length
end

-- Count, then age. Returns the length left. \`bound\` is the meta's \`o\`: the
-- ts of the oldest entry when the age trim last looked, which the entries
-- dropped since (the oldest first) cannot lower. While it is not past the
-- cutoff, no entry is, and the age trim reads nothing.
local function trim(maxLen, cutoff, bound)
  local length = trimCount(redis.call('XLEN', hist), maxLen)
  if bound and bound >= cutoff then return length end
  -- Age: look at the oldest entry only (the common case is that it is not
  -- expired, and reading a batch of entries with their frames on every
  -- publish was most of the script's cost).
  while length > 0 do
    local oldest = redis.call('XRANGE', hist, '-', '+', 'COUNT', 1)
    if #oldest == 0 then return 0 end
    local ts = tonumber(oldest[1][2][8])
    if ts >= cutoff then
      redis.call('HSET', meta, 'o', ts)
      return length
    end
    drop(oldest[1])
    length = length - 1
  end
  return 0
end
`;

/**
 * KEYS: 1-3 as above, 4 the user's connections, 5-7 the run's state, log and
 * the user's runs (`RedisKeys.run`; untouched without a run id).
 * ARGV: 1 new epoch, 2 event id, 3 event name, 4 critical (1/0), 5 ts,
 * 6 payload, 7 awaitedBy or '', 8 historySize, 9 historyTtlMs, 10 cutoff ts
 * (older entries are dropped), 11 the user's channel, 12 metaTtlMs, 13 now
 * (ms: presence records past it are not counted), 14 run id ('' for an event
 * outside a run), 15 the grammar's argument (`runGrammarArg`), 16 grammar
 * mode (`strict`, `warn`, `off`), 17 the run log record after its
 * `{"seq":…,"epoch":…,"ts":…` head, 18 runTtlMs, 19 maxRunsPerUser,
 * 20 what the user's run keys start with (`RedisKeys.runKeyBase`), then the
 * two of RUN_GUARD (always last).
 *
 * Order inside the one step: idempotency (a repeat is answered first, so it
 * is never a violation), then the run grammar (a refusal in strict mode
 * returns before the seq is drawn: nothing stored, sent or used; a state a
 * Redis restart may have lost is checked in warn mode and rebuilt,
 * `run-trust-lua.ts`), then seq, append, fan-out, and the run's state, log
 * and index.
 *
 * Returns {seq, epoch, 0 new | 1 duplicate, connections, open tool calls
 * (JSON list or ''), violation code or '', violation message or '', run log
 * length (0 outside a run)}, or {0, epoch, 2, 0, code, message} when strict
 * mode refused the event.
 * Publishes `epoch\nseq\nid\nevent\ncritical\nts\nawaitedBy\npayload`.
 */
export const PUBLISH_SCRIPT = `${PRELUDE}
${RUN_GRAMMAR_LUA}
${RUN_TRUST_LUA}
local ttl = tonumber(ARGV[9])
local epoch, bound = ensure(ARGV[1], false)
local kept = trim(tonumber(ARGV[8]), tonumber(ARGV[10]), bound)
local id = ARGV[2]
local first = redis.call('HGET', ids, id)
if first then
  redis.call('PEXPIRE', meta, tonumber(ARGV[12]))
  return {tonumber(first), epoch, 1, 0, '', '', '', 0}
end
local run_id = ARGV[14]
local run_stamp, run_state, run_next, run_open, run_code, run_message = false, false, false, '', '', ''
local run_new_stamp = epoch
if run_id ~= '' then
  run_stamp, run_state = run_state_split(redis.call('GET', KEYS[5]))
  local doubt = run_state_doubt(run_stamp, run_state, epoch, tonumber(ARGV[18]))
  local ok, a, b = run_grammar_check(run_state, ARGV[3], ARGV[15])
  if ok == 1 then
    run_next, run_open = a, b
    -- A state carried across a move stays doubted; a run started now does not.
    if doubt == 1 or (doubt == 2 and run_state) then run_new_stamp = epoch .. '~' end
  else
    local doubted = run_grammar_doubted(doubt, a)
    if ARGV[16] == 'strict' and not doubted then
      redis.call('PEXPIRE', meta, tonumber(ARGV[12]))
      return {0, epoch, 2, 0, a, b}
    end
    if ARGV[16] ~= 'off' then run_code, run_message = a, b end
    if doubted then
      run_next, run_open = run_grammar_rebuild(run_state, ARGV[3], ARGV[15])
      run_new_stamp = epoch .. '~'
    end
  end
end
local seq = redis.call('HINCRBY', meta, 'seq', 1)
redis.call('XADD', hist, seq .. '-0', 'i', id, 'e', ARGV[3], 'c', ARGV[4], 't', ARGV[5], 'a', ARGV[7], 'p', ARGV[6])
redis.call('HSET', ids, id, seq)
-- The new entry is younger than the cutoff, which the trim above applied to
-- the others: only the count can be past its limit now.
trimCount(kept + 1, tonumber(ARGV[8]))
-- The event is the stream's oldest: the age trim's bound is its ts.
if kept == 0 then redis.call('HSET', meta, 'o', ARGV[5]) end
-- TTLs: set to their span, but not on every event: only when the stream's
-- has lost more than \`slack\` (1 % of the span, at most 1 s), or when the
-- stream was empty (an ids hash emptied by the trims was deleted and is made
-- again without a TTL). A user's keys live their span after the last publish,
-- less at most \`slack\`.
local slack = math.min(1000, math.floor(ttl / 100))
if kept == 0 or redis.call('PTTL', hist) < ttl - slack then
  redis.call('PEXPIRE', hist, ttl)
  redis.call('PEXPIRE', ids, ttl)
  redis.call('PEXPIRE', meta, tonumber(ARGV[12]))
end
redis.call('PUBLISH', ARGV[11], epoch .. '\\n' .. seq .. '\\n' .. id .. '\\n' .. ARGV[3] .. '\\n' .. ARGV[4] .. '\\n' .. ARGV[5] .. '\\n' .. ARGV[7] .. '\\n' .. ARGV[6])
local now = tonumber(ARGV[13])
local connections = 0
local records = redis.call('HVALS', KEYS[4])
for i = 1, #records do
  local deadline = tonumber(string.match(records[i], '^[^\\n]*\\n(%d+)\\n'))
  if deadline ~= nil and deadline > now then connections = connections + 1 end
end
local log_length = 0
if run_id ~= '' then
  local run_ttl = tonumber(ARGV[18])
  if run_next and (run_next ~= run_state or run_stamp ~= run_new_stamp) then
    redis.call('SET', KEYS[5], run_new_stamp .. ' ' .. run_next, 'PX', run_ttl)
  elseif run_state then
    redis.call('PEXPIRE', KEYS[5], run_ttl)
  end
  log_length = redis.call('RPUSH', KEYS[6], '{"seq":' .. seq .. ',"epoch":"' .. epoch .. '","ts":' .. ARGV[5] .. ARGV[17])
  redis.call('PEXPIRE', KEYS[6], run_ttl)
  local runs = KEYS[7]
  -- The index orders runs by last update: a score above every other run's,
  -- so events within one ms still order their runs as they came.
  local score = tonumber(ARGV[5])
  local top = redis.call('ZREVRANGE', runs, 0, 0, 'WITHSCORES')
  if top[1] ~= nil and tonumber(top[2]) >= score then
    score = top[1] == run_id and tonumber(top[2]) or tonumber(top[2]) + 1
  end
  redis.call('ZADD', runs, score, run_id)
  redis.call('PEXPIRE', runs, run_ttl)
  if log_length == 1 then
    -- A new run: forget the runs whose keys expired, then drop the least
    -- recently updated ones past the bound (never this one).
    redis.call('ZREMRANGEBYSCORE', runs, '-inf', '(' .. (tonumber(ARGV[5]) - run_ttl))
    local excess = redis.call('ZCARD', runs) - tonumber(ARGV[19])
    if excess > 0 then
      local base = ARGV[20]
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
return {seq, epoch, 0, connections, run_open, run_code, run_message, log_length}
`;

/**
 * Replaces the first `ARGV[2]` entries of a run log by one checkpoint (the
 * fold of those entries), unless the log changed at its head since the
 * caller read it (another node compacted first, or the run was dropped):
 * entries are only ever appended at the tail, so an unchanged head means the
 * first `ARGV[2]` entries are the ones folded. KEYS: 1 the log. ARGV: 1 SHA-1
 * of the first entry read, 2 how many entries were folded, 3 the checkpoint,
 * 4 runTtlMs. Returns 1 when compacted, 0 when not.
 */
export const COMPACT_RUN_LOG_SCRIPT = `
local head = redis.call('LINDEX', KEYS[1], 0)
if not head or redis.sha1hex(head) ~= ARGV[1] then return 0 end
redis.call('LTRIM', KEYS[1], tonumber(ARGV[2]), -1)
redis.call('LPUSH', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`;

/**
 * ARGV: 1 new epoch, 2 mode (`head`, `acked` or `position`), 3 cursor seq,
 * 4 cursor epoch, 5 historySize, 6 metaTtlMs, 7 cutoff ts, then the two of
 * RUN_GUARD.
 * Returns {epoch, headSeq, ackedSeq} for `head`, else
 * {epoch, headSeq, ackedSeq, from, gap (1/0), entries}.
 */
export const READ_SCRIPT = `${PRELUDE}
local epoch, bound = ensure(ARGV[1], tonumber(ARGV[6]))
trim(tonumber(ARGV[5]), tonumber(ARGV[7]), bound)
local head = tonumber(redis.call('HGET', meta, 'seq'))
local acked = tonumber(redis.call('HGET', meta, 'acked'))
local mode = ARGV[2]
if mode == 'head' then return {epoch, head, acked} end
local after = acked
local gap = 0
if mode == 'position' then
  after = tonumber(ARGV[3])
  if ARGV[4] ~= epoch or after > head then
    after = resumeAfter(ARGV[4], after)
    gap = 1
  end
end
local entries = redis.call('XRANGE', hist, (after + 1) .. '-0', '+')
local from = after + 1
if #entries > 0 then
  local firstSeq = tonumber(string.match(entries[1][1], '^(%d+)'))
  if firstSeq > after + 1 then
    gap = 1
    from = firstSeq
  end
elseif after < head then
  gap = 1
  from = head + 1
end
return {epoch, head, acked, from, gap, entries}
`;

/**
 * Max-set of the acked cursor, shared by every node. ARGV: 1 seq, 2 the
 * epoch the ack belongs to ('' for any), 3 metaTtlMs.
 * An ack beyond the head is clamped to it; no stream, no cursor; an ack of
 * another epoch (a late ack from a connection of an older stream) moves
 * nothing. Returns the cursor after the step.
 */
export const ACK_SCRIPT = `
local meta = KEYS[1]
local current = redis.call('HMGET', meta, 'epoch', 'seq', 'acked')
local head = current[2]
if not head then return 0 end
redis.call('PEXPIRE', meta, ARGV[3])
if ARGV[2] ~= '' and ARGV[2] ~= current[1] then return tonumber(current[3]) end
local seq = math.min(tonumber(ARGV[1]), tonumber(head))
local acked = tonumber(current[3])
if seq > acked then
  redis.call('HSET', meta, 'acked', seq)
  return seq
end
return acked
`;

/**
 * Replaces one node's records in a user's connection directory, and prunes
 * expired records of every node (hash fields have no TTL of their own before
 * Redis 7.4, so each value carries its deadline).
 * KEYS: 1 the directory hash. ARGV: 1 node id, 2 now (ms), 3 the records'
 * deadline (ms), 4 TTL of the hash (ms), then pairs of connection id and
 * snapshot. A value is `node\ndeadline\nsnapshot`. Returns the fields left.
 */
export const PUT_CONNECTIONS_SCRIPT = `
local key = KEYS[1]
local node = ARGV[1]
local now = tonumber(ARGV[2])
local all = redis.call('HGETALL', key)
for i = 1, #all, 2 do
  local owner, deadline = string.match(all[i + 1], '^([^\\n]*)\\n(%d+)\\n')
  if owner == nil or owner == node or tonumber(deadline) <= now then
    redis.call('HDEL', key, all[i])
  end
end
for i = 5, #ARGV, 2 do
  redis.call('HSET', key, ARGV[i], node .. '\\n' .. ARGV[3] .. '\\n' .. ARGV[i + 1])
end
local left = redis.call('HLEN', key)
if left > 0 then redis.call('PEXPIRE', key, ARGV[4]) end
return left
`;

/**
 * Writes one node's connection count and drops the figures of nodes past
 * their deadline, in one step: a figure another node refreshes meanwhile is
 * never judged on a stale read. KEYS: 1 the loads hash. ARGV: 1 node id,
 * 2 now (ms), 3 the figure's deadline (ms), 4 the count, 5 TTL of the hash
 * (ms). A value is `deadline\ncount`. Returns the fields left.
 */
export const PUT_NODE_LOAD_SCRIPT = `
local key = KEYS[1]
local node = ARGV[1]
local now = tonumber(ARGV[2])
local all = redis.call('HGETALL', key)
for i = 1, #all, 2 do
  local deadline = tonumber(string.match(all[i + 1], '^(%d+)'))
  if all[i] ~= node and (deadline == nil or deadline <= now) then
    redis.call('HDEL', key, all[i])
  end
end
redis.call('HSET', key, node, ARGV[3] .. '\\n' .. ARGV[4])
redis.call('PEXPIRE', key, ARGV[5])
return redis.call('HLEN', key)
`;

/** How each script is registered: its name on the client, its keys and source. */
export const DEFINITIONS = {
  agentsocketPublish: { numberOfKeys: 7, lua: PUBLISH_SCRIPT },
  agentsocketCompactRunLog: { numberOfKeys: 1, lua: COMPACT_RUN_LOG_SCRIPT },
  agentsocketRead: { numberOfKeys: 3, lua: READ_SCRIPT },
  agentsocketAck: { numberOfKeys: 1, lua: ACK_SCRIPT },
  agentsocketPutConnections: { numberOfKeys: 1, lua: PUT_CONNECTIONS_SCRIPT },
  agentsocketPutNodeLoad: { numberOfKeys: 1, lua: PUT_NODE_LOAD_SCRIPT },
} as const;

type ScriptArgument = string | number;
type ScriptCommand = (...keysAndArgs: ScriptArgument[]) => Promise<unknown>;

/** A client with the engine's scripts as commands (keys first, then arguments). */
export type ScriptedRedis = Redis & Record<keyof typeof DEFINITIONS, ScriptCommand>;

/** Registers every script on `client` (`defineCommand`: EVALSHA, EVAL on NOSCRIPT). */
export function defineScripts(client: Redis): ScriptedRedis {
  for (const [name, definition] of Object.entries(DEFINITIONS)) {
    client.defineCommand(name, definition);
  }
  // defineCommand adds the methods at run time; ioredis cannot type them.
  return client as ScriptedRedis;
}
