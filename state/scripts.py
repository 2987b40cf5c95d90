"""Lua scripts: the only multi-key writes. They hold no segment rules, only guards.

The commit script is the heart of invariants 3 and 8; its steps, in order:

0. Moved: the namespace was promoted away (``moved`` set): nothing may land here.
1. Fence: the partition's ``epoch`` in Redis must equal the caller's (set when it was
   assigned the partition). A worker that lost the partition holds an older epoch.
2. Compare-and-set on ``ver``: the caller loaded state at this version; any other
   commit in between (timer vs agent race, zombie) makes this one fail, not clobber.
   Then everything a write below could fail on is checked (the shape of every argument,
   integers where Redis wants them, the type of every key written, each state's size
   against :data:`state.codec.MAX_FIELDS`): Redis does not roll back a script that
   fails part-way, so a bad batch is refused whole (``REFUSED``) before the first write
   (invariant 10). No command gets an unbounded ``unpack`` (:mod:`state.lua`).
3. Write every changed customer hash (HSET; then, only if the hash has more fields than
   the state plus the schedule's ``u``, e.g. a v1 hash, rewrite it whole: a field the
   state no longer has must not linger).
   Apply the counter hashes' deltas (HINCRBY; fields that reach 0 removed): quantile
   summaries, segment counts, hourly transition counts (these expire with retention).
4. Update the due-time schedule (:mod:`state.schedule`: move each customer's entry to
   the bucket of its new due time, or drop it when nothing is due).
5. Append the transitions to the partition's outbox stream.
6. Advance the reader's position (``off``: last applied Kafka offset; a file import
   keeps its own line cursor) and ``ver``; optionally raise one more meta field to a
   value, never lowering it (a backfill's event-time watermark: it moves with the
   offsets it belongs to, see :meth:`state.store.RedisStore.track_watermark`).

Redis runs the script atomically, so all six happen or none.
"""

from __future__ import annotations

from state.codec import MAX_FIELDS
from state.lua import CALL_CHUNKED
from state.schedule import SCHEDULE_LUA

__all__ = ["BUMP_EPOCH", "COMMIT", "LOAD", "PUT_CUTS"]

PUT_CUTS = """
-- KEYS[1]=cuts. ARGV[1]=expected current version (0: none yet), ARGV[2]=new JSON.
-- Compare-and-set: of workers racing to refresh, exactly one wins a version.
local cur = redis.call('GET', KEYS[1])
local ver = 0
if cur then ver = cjson.decode(cur).version end
if ver ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""

LOAD = """
-- KEYS[1]=meta, KEYS[2..]=customer hashes
-- ARGV[1]=the meta field holding this reader's position ('off' for Kafka)
local out = {redis.call('HMGET', KEYS[1], 'epoch', 'ver', ARGV[1], 'moved')}
for i = 2, #KEYS do
  out[i] = redis.call('HGETALL', KEYS[i])
end
return out
"""

BUMP_EPOCH = """
-- KEYS[1]=meta. Returns {new epoch, ver, off}.
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
local cur = redis.call('HMGET', KEYS[1], 'ver', 'off')
return {epoch, cur[1], cur[2]}
"""

COMMIT = (
    (
        """
-- KEYS[1]=meta KEYS[2]=legacy due KEYS[3]=outbox KEYS[4..]=customer hashes, then counters
-- ARGV: epoch, ver, position field, position|'', state JSON, then (customer, payload)...
-- state JSON: {"c": [[field, value, ...] per customer key], "d": [[member, score|""], ...],
--              "q": [[field, delta, ...] per counter hash (the last #q KEYS)],
--              "x": [[index into q, expire-at ms], ...],
--              "w": [meta field, value] (optional: raised to value, never lowered)}
-- (every value a string: Lua numbers would print 15+ digit integers as floats)
local meta, legacy = KEYS[1], KEYS[2]
local tag = string.sub(meta, 1, #meta - 5)  -- '{prefix}:{ns:p}' of '{prefix}:{ns:p}:meta'
local index = tag .. ':dx'
"""
        + CALL_CHUNKED
        + SCHEDULE_LUA
        + """
local cur = redis.call('HMGET', KEYS[1], 'epoch', 'ver', 'moved')
if cur[3] then
  return redis.error_reply('PROMOTED ' .. cur[3])
end
if cur[1] ~= ARGV[1] then
  return redis.error_reply(
    'FENCED partition epoch is ' .. tostring(cur[1]) .. ', caller has ' .. ARGV[1])
end
local ver = tonumber(cur[2] or '0')
if ver ~= tonumber(ARGV[2]) then
  return redis.error_reply('CONFLICT state version is ' .. ver .. ', caller loaded ' .. ARGV[2])
end
-- every check before the first write: Redis does not roll back a script that fails
-- part-way (invariant 10), so whatever could make a command below fail is refused here
local function refuse(why) return redis.error_reply('REFUSED ' .. why) end
local decoded, batch = pcall(cjson.decode, ARGV[5])
if not decoded or type(batch) ~= 'table' then return refuse('the state JSON does not decode') end
if (#ARGV - 5) % 2 ~= 0 then return refuse('outbox entries come as (customer, payload)') end
local function int(v) return type(v) == 'string' and #v <= 18 and string.find(v, '^-?%d+$') end
local function strings(t, what)
  if type(t) ~= 'table' or #t % 2 ~= 0 then return what .. ': not (field, value) pairs' end
  for i = 1, #t do
    if type(t[i]) ~= 'string' then return what .. ': item ' .. i .. ' is not a string' end
  end
end
local function kind(key, want)
  local t = redis.call('TYPE', key).ok
  if t ~= 'none' and t ~= want then return key .. ' is a ' .. t .. ', not a ' .. want end
end
local q = batch.q or {}
local nq = type(q) == 'table' and #q or -1
local nc = #KEYS - 3 - nq
if type(batch.c) ~= 'table' or nq < 0 or #batch.c ~= nc then
  return refuse('expected ' .. nc .. ' customers and ' .. nq .. ' counter hashes')
end
-- (meta is a hash: HMGET above would have failed)
local why = kind(legacy, 'zset') or kind(KEYS[3], 'stream') or kind(index, 'zset')
if why then return refuse(why) end
for k = 1, nc do
  local fields = batch.c[k]
  why = strings(fields, KEYS[k + 3]) or kind(KEYS[k + 3], 'hash')
  if why then return refuse(why) end
  if #fields < 2 or #fields > MAX_VALUES then
    return refuse(KEYS[k + 3] .. ': ' .. #fields / 2 .. ' fields, the limit is MAX_FIELDS')
  end
end
for j = 1, nq do
  why = strings(q[j], KEYS[nc + 3 + j]) or kind(KEYS[nc + 3 + j], 'hash')
  if why then return refuse(why) end
  for i = 2, #q[j], 2 do
    if not int(q[j][i]) then return refuse(KEYS[nc + 3 + j] .. ': a delta is not an integer') end
  end
end
local x = batch.x or {}
if type(x) ~= 'table' then return refuse('the expiries are not a list') end
for _, e in ipairs(x) do
  if type(e) ~= 'table' or type(e[1]) ~= 'number' or e[1] < 1 or e[1] > nq
    or type(e[2]) ~= 'number' then
    return refuse('an expiry is not (counter index, ms)')
  end
end
if type(batch.d) ~= 'table' then return refuse('no schedule list') end
for _, entry in ipairs(batch.d) do
  if type(entry) ~= 'table' or type(entry[1]) ~= 'string' or #entry[1] == 0
    or not (entry[2] == '' or int(entry[2])) then
    return refuse('a schedule entry is not (customer, due ms or "")')
  end
end
local w = batch.w
if w ~= nil and (type(w) ~= 'table' or type(w[1]) ~= 'string' or not int(w[2])) then
  return refuse('the raised meta field is not (field, integer)')
end
local raise = false
if w then
  local was = redis.call('HGET', meta, w[1])
  if was and not int(was) then return refuse('meta ' .. w[1] .. ' holds no integer') end
  raise = tonumber(w[2]) > tonumber(was or '-1')
end

-- the writes: from here on nothing can fail on what was given
for k = 4, #KEYS - nq do
  local fields = batch.c[k - 3]
  call_chunked('HSET', KEYS[k], fields)
  if redis.call('HLEN', KEYS[k]) > #fields / 2 + 1 then
    -- fields the state no longer has (v1's, or an older state's continuations): rewrite
    -- the hash whole, keeping the schedule's pointer (state.schedule)
    local due = redis.call('HGET', KEYS[k], 'u')
    if due then
      fields[#fields + 1] = 'u'
      fields[#fields + 1] = due
    end
    redis.call('DEL', KEYS[k])
    call_chunked('HSET', KEYS[k], fields)
  end
end
for j = 1, nq do
  local key, deltas = KEYS[#KEYS - nq + j], q[j]
  for i = 1, #deltas, 2 do
    if redis.call('HINCRBY', key, deltas[i], deltas[i + 1]) == 0 then
      redis.call('HDEL', key, deltas[i])
    end
  end
end
for _, e in ipairs(x) do
  redis.call('PEXPIREAT', KEYS[#KEYS - nq + e[1]], e[2])
end
local has_legacy = redis.call('EXISTS', legacy) == 1
for _, entry in ipairs(batch.d) do
  reschedule(entry[1], entry[2], has_legacy)
end
if scheduled ~= 0 then redis.call('HINCRBY', meta, 'sz', scheduled) end
for a = 6, #ARGV, 2 do
  redis.call('XADD', KEYS[3], '*', 'k', ARGV[a], 'd', ARGV[a + 1])
end
ver = ver + 1
local set = {'ver', ver}
if ARGV[4] ~= '' then
  set[3], set[4] = ARGV[3], ARGV[4]
end
if raise then
  set[#set + 1] = w[1]
  set[#set + 1] = w[2]
end
redis.call('HSET', meta, unpack(set))
return ver
"""
    )
    .replace("MAX_VALUES", str(2 * MAX_FIELDS))
    .replace("MAX_FIELDS", str(MAX_FIELDS))
)
