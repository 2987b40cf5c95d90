"""Lua shared by the scripts: a bounded ``unpack``.

Redis's Lua refuses to ``unpack`` more than about 8,000 values (``LUAI_MAXCSTACK``:
"too many results to unpack"), and a script that fails does not roll back what it
already wrote (invariant 10). So no script passes a table of unbounded length to one
command: :data:`CALL_CHUNKED` sends it in slices of :data:`UNPACK_CHUNK` values, all
inside the same script run (no extra round trip, still one atomic step).
"""

from __future__ import annotations

__all__ = ["CALL_CHUNKED", "UNPACK_CHUNK"]

UNPACK_CHUNK = 1000
"""Values per ``unpack``: far below the ~8,000 Lua allows, and even, so (field, value)
and (score, member) pairs never straddle two calls."""

CALL_CHUNKED = """
-- redis.call(cmd, key, ...args) in slices of UNPACK_CHUNK values (an even number: pairs
-- stay together); nothing for an empty table
local function call_chunked(cmd, key, args)
  local n = #args
  for i = 1, n, UNPACK_CHUNK do
    redis.call(cmd, key, unpack(args, i, math.min(i + UNPACK_CHUNK - 1, n)))
  end
end
""".replace("UNPACK_CHUNK", str(UNPACK_CHUNK))
