"""The due-time schedule: customers bucketed by due time into small sorted sets.

Why not one sorted set per partition: a member of a big sorted set costs ~100 bytes
(skiplist node, dict entry, the member string), as much as the rest of a customer.
A sorted set of at most 128 members is a listpack instead, ~20 bytes a member. So the
schedule is a B-tree of depth two, per partition:

    {ns:p}:dx        zset   bucket id -> lowest due time the bucket covers (-inf first)
    {ns:p}:s:<id>    zset   customer id -> due time (epoch ms), at most SPLIT members
    {ns:p}:c:<cid>   hash   field ``u``: the customer's due time (where to find it)
    {ns:p}:meta      hash   ``bk``: last bucket id; ``sz``: customers in the buckets
    {ns:p}:due       zset   legacy single set (before buckets): still read, and drained
                            as customers are committed; it also takes an entry for a
                            customer with no hash (the bucket path keeps ``u`` there)

A customer due at ``t`` is in the bucket with the greatest lower bound <= ``t``; the
customer's own hash remembers ``t``, so moving it is two index lookups (O(log buckets))
and a listpack edit (O(SPLIT)). A bucket reaching SPLIT members splits at its median
due time (members sharing one due time never split: that bucket just grows into an
ordinary sorted set). The smaller side moves to the new bucket: when one customer lands
below a big same-time group, it alone moves (the new bucket takes the old lower bound,
the old one starts at the group's time), and a move is never one unbounded command
(:mod:`state.lua`). An emptied bucket is dropped: the one below it then covers its
range, which held no one. The timer reads the buckets whose lower bound is <= now, in
order: all but the last are entirely due, so a step is O(log buckets + due).
"""

from __future__ import annotations

__all__ = ["DUE", "DUE_COUNT", "SCHEDULE_LUA", "SPLIT"]

SPLIT = 128
"""Members at which a bucket splits: Redis's default ``zset-max-listpack-entries``, so
a bucket stays a listpack."""

SCHEDULE_LUA = """
-- schedule helpers; expect locals meta (KEYS[1]), legacy (KEYS[2]), tag, index, and
-- call_chunked (state.lua)
local scheduled = 0  -- change of the customer count, written to meta 'sz' once
-- bucket members with lo <= due <= hi (Redis score ranges) into another bucket
local function move(from, to, lo, hi)
  local got = redis.call('ZRANGEBYSCORE', from, lo, hi, 'WITHSCORES')
  local args = {}
  for i = 1, #got, 2 do
    args[#args + 1] = got[i + 1]
    args[#args + 1] = got[i]
  end
  call_chunked('ZADD', to, args)  -- state.lua: a group can be any size
  redis.call('ZREMRANGEBYSCORE', from, lo, hi)
end
local function bucket_at(t)
  return redis.call('ZREVRANGEBYSCORE', index, t, '-inf', 'LIMIT', 0, 1)[1]
end
local function unschedule(cid, old)
  local b = bucket_at(old)
  if b then
    local key = tag .. ':s:' .. b
    if redis.call('ZREM', key, cid) == 1 then
      scheduled = scheduled - 1
      if redis.call('EXISTS', key) == 0 then redis.call('ZREM', index, b) end
    end
  end
end
local function schedule(cid, t)
  local b = bucket_at(t)
  if not b then
    b = tostring(redis.call('HINCRBY', meta, 'bk', 1))
    redis.call('ZADD', index, '-inf', b)
  end
  local key = tag .. ':s:' .. b
  if redis.call('ZADD', key, t, cid) == 0 then return end  -- moved within the bucket
  scheduled = scheduled + 1
  local n = redis.call('ZCARD', key)
  if n < SPLIT then return end
  local low = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2]
  local mid = redis.call('ZRANGE', key, math.floor(n / 2), math.floor(n / 2), 'WITHSCORES')[2]
  if tonumber(mid) <= tonumber(low) then  -- half share the lowest time: split above it
    mid = redis.call('ZRANGEBYSCORE', key, '(' .. low, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)[2]
    if not mid then return end  -- one due time for all: can't split, the bucket grows
  end
  -- move the smaller side: one customer due before a big same-time group moves alone
  local nb = tostring(redis.call('HINCRBY', meta, 'bk', 1))
  local upper = redis.call('ZCOUNT', key, mid, '+inf')
  if upper <= n - upper then  -- due at or after mid: a new bucket starting at mid
    move(key, tag .. ':s:' .. nb, mid, '+inf')
    redis.call('ZADD', index, mid, nb)
  else  -- due before mid: a new bucket takes this one's lower bound, this one starts at mid
    move(key, tag .. ':s:' .. nb, '-inf', '(' .. mid)
    redis.call('ZADD', index, redis.call('ZSCORE', index, b), nb)
    redis.call('ZADD', index, mid, b)
  end
end
-- one customer's schedule entry: t = due ms, or '' for none
local function reschedule(cid, t, has_legacy)
  local ckey = tag .. ':c:' .. cid
  local old = redis.call('HGET', ckey, 'u')
  if has_legacy then redis.call('ZREM', legacy, cid) end
  if old == t then return end
  if old then unschedule(cid, old) end
  if t == '' then
    if old then redis.call('HDEL', ckey, 'u') end
  elseif old or redis.call('EXISTS', ckey) == 1 then
    schedule(cid, t)
    redis.call('HSET', ckey, 'u', t)
  else  -- no hash to keep the pointer in: the legacy set takes the entry
    redis.call('ZADD', legacy, t, cid)
  end
end
""".replace("SPLIT", str(SPLIT))

DUE = """
-- KEYS[1]=legacy due zset, KEYS[2]=bucket index. ARGV: now ms, limit, key tag
local now, limit, tag = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local out = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
if #out < limit then
  -- every bucket but the last one whose bound is <= now is entirely due
  local buckets = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit + 1)
  for _, b in ipairs(buckets) do
    local got = redis.call(
      'ZRANGEBYSCORE', tag .. ':s:' .. b, '-inf', now, 'LIMIT', 0, limit - #out)
    for _, cid in ipairs(got) do out[#out + 1] = cid end
    if #out >= limit then break end
  end
end
return out
"""

DUE_COUNT = """
-- KEYS[1]=legacy due zset, KEYS[2]=bucket index, KEYS[3]=meta. ARGV: now ms, key tag.
-- Returns {due now, scheduled}.
local now, tag = ARGV[1], ARGV[2]
local n = redis.call('ZCOUNT', KEYS[1], '-inf', now)
for _, b in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  n = n + redis.call('ZCOUNT', tag .. ':s:' .. b, '-inf', now)
end
local size = tonumber(redis.call('HGET', KEYS[3], 'sz') or '0')
return {n, size + redis.call('ZCARD', KEYS[1])}
"""
