/**
 * The Lua shared by the publish and read scripts (`publish-script.ts`,
 * `scripts.ts`): RUN_GUARD (a Redis restart that may have lost writes),
 * create-if-missing and the trims. Keys and fields: `scripts.ts`.
 */

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
-- The stamp of this call's run, \`<run id>:<1|0>\`: its arguments are the
-- call's, checked once (a publish steps many events in one call).
local guard_stamp = false

-- stamp: the meta's \`r\` as the caller read it (false when missing).
local function guardRun(epoch, newEpoch, stamp)
  local runs, proven = ARGV[#ARGV - 1], ARGV[#ARGV]
  if not guard_stamp then
    if not string.match(runs, '^%x+[%x,]*$') or (proven ~= '1' and proven ~= '0') then
      error('RUN_GUARD: the last two arguments must be the Redis run id and 1/0')
    end
    guard_stamp = string.match(runs, '^%x+') .. ':' .. proven
  end
  if stamp == guard_stamp then return epoch end
  -- Runs after the first (Redis Cluster) wrote what they hold losslessly
  -- to the current one: a stream stamped by one of them did not restart.
  local restarted = stamp and not string.find(',' .. runs .. ',',
    ',' .. string.match(stamp, '^[^:]*') .. ',', 1, true)
  if restarted and (string.sub(stamp, -1) ~= '1' or proven ~= '1') then
    local head = redis.call('HGET', meta, 'seq')
    local moves = {}
    for token in string.gmatch(redis.call('HGET', meta, 'mv') or '', '%S+') do
      moves[#moves + 1] = token
    end
    moves[#moves + 1] = epoch
    moves[#moves + 1] = head
    local first = math.max(1, #moves - 15)
    local now = redis.call('TIME')
    redis.call('HSET', meta, 'epoch', newEpoch, 'mv', table.concat(moves, ' ', first),
      'mt', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
    epoch = newEpoch
  end
  redis.call('HSET', meta, 'r', guard_stamp)
  return epoch
end

local function resumeAfter(cursorEpoch, cursorSeq)
  local after, found = cursorSeq, false
  local left = nil
  for token in string.gmatch(redis.call('HGET', meta, 'mv') or '', '%S+') do
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

/**
 * Shared prelude: create-if-missing and the two trims (count, then age).
 * `meta`, `hist` and `ids` are the keys of the user being stepped: KEYS[1-3]
 * for the read script; the publish script sets them again for each event of
 * its batch (the functions here and in RUN_TRUST_LUA read them as upvalues).
 */
export const PRELUDE = `
local meta, hist, ids = KEYS[1], KEYS[2], KEYS[3]
${RUN_GUARD}
-- metaTtl false: the caller refreshes the meta's TTL itself (the publish).
-- Returns the epoch, the meta's \`o\` (a ts no stored entry is older than,
-- as far as the age trim knows; nil when unknown) and its \`x\` (when the
-- publish last set the stream's TTLs, Redis time in ms; nil when unknown).
local function ensure(newEpoch, metaTtl)
  local current = redis.call('HMGET', meta, 'epoch', 'r', 'o', 'x')
  local epoch = current[1]
  if not epoch then
    redis.call('DEL', hist, ids)
    redis.call('HSET', meta, 'epoch', newEpoch, 'seq', 0, 'acked', 0)
    epoch = newEpoch
  end
  epoch = guardRun(epoch, newEpoch, current[2])
  if metaTtl then redis.call('PEXPIRE', meta, metaTtl) end
  return epoch, current[3] and tonumber(current[3]), current[4] and tonumber(current[4])
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

-- Count, then age. Returns the length left and the bound after the trim.
-- \`bound\` is the meta's \`o\`: the ts of the oldest entry when the age trim
-- last looked, which the entries dropped since (the oldest first) cannot
-- lower. While it is not past the cutoff, no entry is, and the age trim
-- reads nothing. \`known\`: the stream's length when the caller knows it
-- (nil: XLEN).
local function trim(maxLen, cutoff, bound, known)
  local length = trimCount(known or redis.call('XLEN', hist), maxLen)
  if bound and bound >= cutoff then return length, bound end
  -- Age: look at the oldest entry only (the common case is that it is not
  -- expired, and reading a batch of entries with their frames on every
  -- publish was most of the script's cost).
  while length > 0 do
    local oldest = redis.call('XRANGE', hist, '-', '+', 'COUNT', 1)
    if #oldest == 0 then return 0, bound end
    local ts = tonumber(oldest[1][2][8])
    if ts >= cutoff then
      redis.call('HSET', meta, 'o', ts)
      return length, ts
    end
    drop(oldest[1])
    length = length - 1
  end
  return 0, bound
end
`;
