"""The partition layout a namespace was built with, and the guard against any other.

Keys are laid out per purchases partition (hash tag ``{ns:p}``, one Redis Cluster slot
each), and a customer's partition is the producer's partitioner over its id *modulo the
partition count*. Change the count and most customers hash elsewhere: their state, due
times and order history sit under keys no one reads, their next event starts them from
nothing (a false ``first_purchase``), and the offsets recorded per partition no longer
describe what was applied. There is no safe in-place migration while events flow.

So a namespace records, once, the count it was built with (the first live worker,
backfill or import writing into it), and every later one compares: a different count
is refused with one line naming both counts and the supported procedure, a backfill
into a new namespace (which records the new count) and a promote. ``drop`` deletes the
record with the namespace; a namespace that predates the record adopts the current
count on its next start.
"""

from __future__ import annotations

from typing import cast

from schemas.errors import LayoutMismatch
from state.connection import unavailable_as_error
from state.store import RedisStore

__all__ = ["PROCEDURE", "ensure_layout", "recorded_layout"]

PROCEDURE = (
    "backfill into a new namespace with the new layout (rfm-stream backfill --into NEW), "
    "then promote it (rfm-stream promote NEW)"
)


async def recorded_layout(store: RedisStore) -> tuple[int, str] | None:
    """(partitions, topic) the store's namespace was built with; None if not recorded."""
    client = await store.connect()
    async with unavailable_as_error():
        raw = await client.hmget(store.keys.layout(), "partitions", "topic")
    parts, topic = cast(list[str | None], raw)  # decoded (state.connection.RedisClient)
    return None if parts is None else (int(parts), topic or "?")


def mismatch(namespace: str, built: tuple[int, str], topic: str, partitions: int) -> str:
    """The one-line refusal: both counts, and what to do instead."""
    return (
        f"namespace {namespace!r} was built for {built[0]} partitions of topic {built[1]!r}, "
        f"but topic {topic!r} has {partitions}: keys are laid out per partition, so "
        f"customers would no longer find their state. Supported procedure: {PROCEDURE}"
    )


async def ensure_layout(store: RedisStore, topic: str, partitions: int) -> bool:
    """Record ``partitions`` for the store's namespace if it has no layout yet (returns
    True then), else check it; raises :class:`LayoutMismatch` if the counts differ."""
    client = await store.connect()
    key = store.keys.layout()
    async with unavailable_as_error():
        if await client.hsetnx(key, "partitions", partitions):
            await client.hset(key, "topic", topic)
            return True
    built = await recorded_layout(store)
    if built is not None and built[0] != partitions:
        raise LayoutMismatch(mismatch(store.keys.namespace, built, topic, partitions))
    return False
