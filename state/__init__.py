"""Redis: key layout, Lua scripts, atomic fenced commits, schedule, outbox."""

from state.keys import Keys
from state.store import Claim, Loaded, RedisStore

__all__ = ["Claim", "Keys", "Loaded", "RedisStore"]
