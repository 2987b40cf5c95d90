"""Lua scripts: the only multi-key writes. They hold no segment rules, only guards.

The commit script is the heart of invariants 3 and 8; its steps, in order:

0. Moved: the namespace was promoted away (``moved`` set): nothing may land here.
1. Fence: the partition's ``epoch`` in Redis must equal the caller's (set when it was
   assigned the partition). A worker that lost the partition holds an older epoch.
2. Compare-and-set on ``ver``: the caller loaded state at this version; any other
   commit in between (timer vs agent race, zombie) makes this one fail, not clobber.
3. Write every changed customer hash (HSET; then, only if the hash has more fields than
   the state plus the schedule's ``u``, e.g. a v1 hash, rewrite it whole: a field the
   state no longer has must not linger).
   Apply the counter hashes' deltas (HINCRBY; fields that reach 0 removed): quantile
   summaries, segment counts, hourly transition counts (these expire with retention).
4. Update the due-time schedule (:mod:`state.schedule`: move each customer's entry to
   the bucket of its new due time, or drop it when nothing is due).
5. Append the transitions to the partition's outbox stream.
6. Advance the reader's position (``off``: last applied Kafka offset; a file import
   keeps its own line cursor) and ``ver``.

Redis runs the script atomically, so all six happen or none.
"""

from __future__ import annotations

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
    """
-- KEYS[1]=meta KEYS[2]=legacy due KEYS[3]=outbox KEYS[4..]=customer hashes, then counters
-- ARGV: epoch, ver, position field, position|'', state JSON, then (customer, payload)...
-- state JSON: {"c": [[field, value, ...] per customer key], "d": [[member, score|""], ...],
--              "q": [[field, delta, ...] per counter hash (the last #q KEYS)],
--              "x": [[index into q, expire-at ms], ...]}
-- (every value a string: Lua numbers would print 15+ digit integers as floats)
local meta, legacy = KEYS[1], KEYS[2]
local tag = string.sub(meta, 1, #meta - 5)  -- '{prefix}:{ns:p}' of '{prefix}:{ns:p}:meta'
local index = tag .. ':dx'
"""
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
local batch = cjson.decode(ARGV[5])
local nq = batch.q and #batch.q or 0
for k = 4, #KEYS - nq do
  local fields = batch.c[k - 3]
  redis.call('HSET', KEYS[k], unpack(fields))
  if redis.call('HLEN', KEYS[k]) > #fields / 2 + 1 then
    -- fields the state no longer has (v1's, or an older state's continuations): rewrite
    -- the hash whole, keeping the schedule's pointer (state.schedule)
    local due = redis.call('HGET', KEYS[k], 'u')
    if due then
      fields[#fields + 1] = 'u'
      fields[#fields + 1] = due
    end
    redis.call('DEL', KEYS[k])
    redis.call('HSET', KEYS[k], unpack(fields))
  end
end
for j = 1, nq do
  local key, deltas = KEYS[#KEYS - nq + j], batch.q[j]
  for i = 1, #deltas, 2 do
    if redis.call('HINCRBY', key, deltas[i], deltas[i + 1]) == 0 then
      redis.call('HDEL', key, deltas[i])
    end
  end
end
if batch.x then
  for _, e in ipairs(batch.x) do
    redis.call('PEXPIREAT', KEYS[#KEYS - nq + e[1]], e[2])
  end
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
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'ver', ver, ARGV[3], ARGV[4])
else
  redis.call('HSET', KEYS[1], 'ver', ver)
end
return ver
"""
)
