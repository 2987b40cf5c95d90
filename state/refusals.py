"""Redis answering, but refusing writes for a while; and the eviction policy it must not have.

A refusal is not a bug in the request: the same write succeeds once the server's state
changes (memory freed, the replica promoted, the disk writable again, the script done).
So the worker treats it like Redis being down (:class:`StoreRefused` is a
:class:`~schemas.errors.StoreUnavailable`): stop consuming, back off, retry, say which
refusal in ``/health`` and ``/metrics``. It is safe to retry because Redis refuses a
script's write only before the script's first write (never half-way), and our scripts
write nothing before their checks (invariant 10).

An evicting ``maxmemory-policy`` is the opposite: no refusal, but customer states,
offsets, epochs and outbox entries silently deleted under memory pressure. The worker
refuses to start on one unless told otherwise (``RFM_ALLOW_EVICTION=true``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import OutOfMemoryError, ReadOnlyError, ResponseError

from schemas.errors import StoreUnavailable

__all__ = [
    "REFUSALS",
    "StoreRefused",
    "eviction_refusal",
    "maxmemory_policies",
    "refusal_of",
]

REFUSALS = {
    "OOM": "used memory is over maxmemory",
    "READONLY": "this server is a read-only replica (after a failover?)",
    "MISCONF": "it cannot persist to disk (stop-writes-on-bgsave-error)",
    "BUSY": "a script is running past busy-reply-threshold",
    "UNKILLABLE": "a script that already wrote is running and can't be killed",
    "KILLED": "our script was stopped by SCRIPT KILL",
    "NOREPLICAS": "too few replicas are connected (min-replicas-to-write)",
}
"""Refusal code -> why Redis refuses, as shown in ``/health``."""


class StoreRefused(StoreUnavailable):
    """Redis answers but refuses writes for now; ``reason`` is a key of :data:`REFUSALS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"redis refuses writes ({reason}: {REFUSALS[reason]}): {detail}")
        self.reason = reason


def refusal_of(exc: BaseException | None) -> str | None:
    """The refusal code of a Redis error reply, or None if it is not a refusal.

    redis-py strips the code from the replies it has a class for (OOM, READONLY), so
    those go by class; the others by the reply's first word. A script stopped by SCRIPT
    KILL answers a plain ``ERR Script killed by user``.
    """
    if isinstance(exc, OutOfMemoryError):
        return "OOM"
    if isinstance(exc, ReadOnlyError):
        return "READONLY"
    if not isinstance(exc, ResponseError):
        return None
    text = str(exc)
    code = text.split(" ", 1)[0]
    if code in REFUSALS:
        return code
    if "script killed by user" in text.lower():
        return "KILLED"
    return None


SAFE_POLICY = "noeviction"


def eviction_refusal(policies: Iterable[str], allowed: bool) -> str | None:
    """Why the worker must not start on these ``maxmemory-policy`` values (one per master),
    or None. ``allowed``: ``RFM_ALLOW_EVICTION`` is set."""
    evicting = sorted({p for p in policies if p != SAFE_POLICY})
    if not evicting or allowed:
        return None
    return (
        f"redis maxmemory-policy is {', '.join(evicting)}: under memory pressure it would "
        f"silently delete customer states, offsets and unpublished transitions; set it to "
        f"{SAFE_POLICY} (CONFIG SET maxmemory-policy {SAFE_POLICY}, and in redis.conf), or "
        f"set RFM_ALLOW_EVICTION=true to start anyway"
    )


async def maxmemory_policies(client: aioredis.Redis | RedisCluster) -> list[str] | None:
    """Every master's ``maxmemory-policy`` (None if CONFIG is not allowed: ACLs).

    ``client`` is a :data:`state.connection.RedisClient`, spelled out: that module maps
    errors with this one, which so imports nothing of it."""
    try:
        if isinstance(client, RedisCluster):
            nodes = client.get_primaries()
            got = [await client.config_get("maxmemory-policy", target_nodes=n) for n in nodes]
        else:
            got = [await client.config_get("maxmemory-policy")]
    except ResponseError:
        return None
    return [cast(str, g["maxmemory-policy"]) for g in got if "maxmemory-policy" in g]  # decoded
