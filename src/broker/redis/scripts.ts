/**
 * The Lua scripts of the Redis engine, registered on a client with ioredis
 * `defineCommand` (`defineScripts`), which runs EVALSHA and falls back to EVAL
 * when the server lost its script cache (a restart). Each runs atomically on the Redis that
 * owns the user's hash slot, so "assign seq, append, trim, fan out" is one
 * step per user stream (Broker contract, point 1), even with many nodes.
 *
 * Keys of one user (all in one hash slot, see `keys.ts`; the publish script
 * is given the meta key of each event of its batch and derives the others,
 * or on Redis Cluster is given all seven, `publish-script.ts`):
 * - KEYS[1] meta: hash `epoch`, `seq` (last assigned), `acked` (cursor);
 *   `o`, the ts of the oldest entry when the age trim last looked (`trim`);
 *   `x`, when a publish last set the stream's TTLs (Redis time, ms);
 *   `r`, `mv`, `mt` of RUN_GUARD (a Redis restart that may have lost writes)
 * - KEYS[2] hist: stream, entry id `<seq>-0`, fields in this fixed order:
 *   `i` event id, `e` event name, `c` critical (1/0), `t` ts (ms),
 *   `a` awaitedBy ('' if none), `p` the event's payload (opaque: the
 *   gateway builds the frame from it, `protocol/event-frame.ts`)
 * - KEYS[3] ids: hash event id -> seq, one entry per stored event whose id
 *   the publisher gave (an entry leaves with its event, so the hash is
 *   bounded by `historySize`; a generated id cannot repeat and is not kept)
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
 * `publish-script.ts`), read and ack): a user who stays
 * connected but idle keeps the epoch, and expired events show as a `gap` in
 * the same stream instead of a new stream (as in the memory broker).
 */
import type { Redis } from 'ioredis';
import { TEXT_FRAME_FIRST_BYTE } from '../../gateway/wire-frame.js';
import { EVENT_FRAME_PREFIX_PARTS } from '../../protocol/event-frame.js';
import { PUBLISH_SCRIPT } from './publish-script.js';
import { PRELUDE } from './stream-lua.js';

const [BEFORE_SEQ, BEFORE_ID, BEFORE_TS, BEFORE_PAYLOAD] = EVENT_FRAME_PREFIX_PARTS;

/** A Lua string literal of `text` (JSON's escapes of quotes and backslashes are Lua's). */
function luaString(text: string): string {
  return JSON.stringify(text);
}

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
 * {epoch, headSeq, ackedSeq, from, gap (1/0), frames, critical, awaited}:
 * `frames` is one string, the events' whole WebSocket frames one after the
 * other; `critical` one character per event, `1` or `0`; `awaited` is flat,
 * the place (from 1) and `awaitedBy` of each event that has one. The script
 * builds each frame (`frameOf`: the text of `encodeEventFramePrefix` and the
 * payload, behind the header of `encodeTextFrame`), so a node writes the
 * bytes it reads as they are, and reads seq, ts and where the payload starts
 * from the frame itself (`decodeEvents`): no field names, strings, framing or
 * reply value per event on the node, which were most of a resume storm's
 * cost there (docs/performance.md, "Resume storm on Redis").
 *
 * The reply is this script's alone (each node runs the script of its own
 * version, by its own SHA), so nodes of two versions read history side by
 * side in a rolling upgrade; the stored entries are unchanged.
 */
export const READ_SCRIPT = `${PRELUDE}
-- A field of an entry: at its place in the fixed order (scripts.ts), else
-- looked up by name (an entry of another layout).
local function field(f, name, at)
  if f[at - 1] == name then return f[at] end
  for i = 1, #f, 2 do
    if f[i] == name then return f[i + 1] end
  end
  return nil
end

-- The event's WebSocket text frame.
local function frameOf(seq, id, ts, payload)
  local text = ${luaString(BEFORE_SEQ)} .. seq .. ${luaString(BEFORE_ID)} .. id .. ${luaString(BEFORE_TS)} .. ts .. ${luaString(BEFORE_PAYLOAD)}
  local n = #text + #payload
  local header
  if n < 126 then
    header = string.char(${TEXT_FRAME_FIRST_BYTE}, n)
  elseif n < 65536 then
    header = string.char(${TEXT_FRAME_FIRST_BYTE}, 126, math.floor(n / 256), n % 256)
  else
    header = string.char(${TEXT_FRAME_FIRST_BYTE}, 127, 0, 0, 0, 0, math.floor(n / 16777216) % 256,
      math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
  end
  return header .. text .. payload
end

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
local frames, critical, awaited = {}, {}, {}
for n, entry in ipairs(entries) do
  local f = entry[2]
  local ts = tonumber(field(f, 't', 8)) or 0
  frames[n] = frameOf(string.match(entry[1], '^(%d+)'), field(f, 'i', 2) or '',
    string.format('%d', ts), field(f, 'p', 12) or '')
  critical[n] = field(f, 'c', 6) == '1' and '1' or '0'
  local by = field(f, 'a', 10) or ''
  if by ~= '' then
    awaited[#awaited + 1] = n
    awaited[#awaited + 1] = by
  end
end
return {epoch, head, acked, from, gap, table.concat(frames), table.concat(critical), awaited}
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
  // Keys per call vary with the batch: the first argument is their count.
  agentsocketPublish: { numberOfKeys: undefined, lua: PUBLISH_SCRIPT },
  agentsocketCompactRunLog: { numberOfKeys: 1, lua: COMPACT_RUN_LOG_SCRIPT },
  agentsocketRead: { numberOfKeys: 3, lua: READ_SCRIPT },
  agentsocketAck: { numberOfKeys: 1, lua: ACK_SCRIPT },
  agentsocketPutConnections: { numberOfKeys: 1, lua: PUT_CONNECTIONS_SCRIPT },
  agentsocketPutNodeLoad: { numberOfKeys: 1, lua: PUT_NODE_LOAD_SCRIPT },
} as const;

type ScriptArgument = string | number;
type ScriptCommand = (...keysAndArgs: ScriptArgument[]) => Promise<unknown>;

/**
 * A client with the engine's scripts as commands (keys first, then
 * arguments). ioredis adds each with a `…Buffer` twin whose bulk replies are
 * Buffers; the read's is used (the payloads go into frames as bytes).
 */
export type ScriptedRedis = Redis &
  Record<keyof typeof DEFINITIONS, ScriptCommand> & { agentsocketReadBuffer: ScriptCommand };

/** Registers every script on `client` (`defineCommand`: EVALSHA, EVAL on NOSCRIPT). */
export function defineScripts(client: Redis): ScriptedRedis {
  for (const [name, definition] of Object.entries(DEFINITIONS)) {
    client.defineCommand(name, definition);
  }
  // defineCommand adds the methods at run time; ioredis cannot type them.
  return client as ScriptedRedis;
}
