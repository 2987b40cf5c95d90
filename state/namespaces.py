"""Namespaces: which one serves the live name, promoting a backfilled one, dropping old ones.

The live worker serves a *name* (``RFM_NAMESPACE``); a pointer key says which physical
namespace holds that name's state (none: the name itself). Promotion, in order:

1. Bump the epochs of the target's partitions: a backfill still writing there is fenced.
2. Point the name at the target.
3. Mark every partition of the old namespace ``moved`` (and bump its epoch): from then on
   the commit script refuses any write there, so no live event can land in the old
   namespace after the switch. The worker notices (a refused commit, or the pointer on
   its next timer tick), publishes what its old outbox still holds and restarts on the
   target, resuming each partition at the target's recorded offsets: events after the
   backfill's end are applied there exactly once.
"""

from __future__ import annotations

from schemas.errors import RfmStreamError
from state.connection import RedisClient
from state.keys import Keys

__all__ = ["drop", "promote", "resolve"]


async def resolve(client: RedisClient, prefix: str, name: str) -> str:
    """The physical namespace serving ``name``."""
    target = await client.get(Keys(prefix, name).active())
    return target or name


async def _metas(client: RedisClient, prefix: str, namespace: str) -> list[str]:
    pattern = f"{prefix}:{{{namespace}:*}}:meta"
    return [k async for k in client.scan_iter(pattern, count=1000)]


async def promote(client: RedisClient, prefix: str, name: str, target: str) -> str:
    """Make ``target`` serve ``name``; returns the namespace it replaced."""
    old = await resolve(client, prefix, name)
    if old == target:
        raise RfmStreamError(f"namespace {target!r} already serves {name!r}")
    targets = await _metas(client, prefix, target)
    if not targets:
        raise RfmStreamError(f"namespace {target!r} has no state: backfill into it first")
    for meta in targets:
        await client.hincrby(meta, "epoch", 1)
    await client.set(Keys(prefix, name).active(), target)
    for meta in await _metas(client, prefix, old):
        await client.hset(meta, "moved", target)
        await client.hincrby(meta, "epoch", 1)
    return old


async def drop(client: RedisClient, prefix: str, name: str, namespace: str) -> int:
    """Delete every key of ``namespace``; refuses the one serving ``name``."""
    if await resolve(client, prefix, name) == namespace:
        raise RfmStreamError(f"namespace {namespace!r} serves {name!r}: promote another first")
    keys = [k async for k in client.scan_iter(Keys(prefix, namespace).pattern(), count=1000)]
    for i in range(0, len(keys), 1000):
        await client.unlink(*keys[i : i + 1000])
    return len(keys)
