"""Delete the quantile summaries of a generation no longer counted into.

A rules version's summaries are kept per era (:class:`segments.cut_points.Era`); when a new
era begins, the previous one's summaries are never read or written again by the workers
on the new rules, and left alone they would stay in Redis for ever (up to ~17,000 fields
per partition and quantity). The names are known (the era records them), so this is a
bounded UNLINK per partition, never a SCAN: one command per partition, every key of it
under the partition's hash tag (one Cluster slot), and a command the worker's documented
ACL grants.
"""

from __future__ import annotations

from collections.abc import Iterable

from state.connection import unavailable_as_error
from state.store import RedisStore

__all__ = ["drop_summaries"]


async def drop_summaries(
    store: RedisStore, partitions: Iterable[int], names: Iterable[str]
) -> None:
    """UNLINK the summaries ``names`` of every partition in ``partitions`` (absent ones
    are no error)."""
    gone = sorted(set(names))
    if not gone:
        return
    client = await store.connect()
    async with unavailable_as_error():
        for p in partitions:
            await client.unlink(*(store.keys.summary(p, name) for name in gone))
