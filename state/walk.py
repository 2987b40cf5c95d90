"""Read every customer of a namespace in bounded chunks, writing nothing: for dry runs.

The same reads a sweep makes (:meth:`state.scans.Scans.scan_customers`, then
:meth:`state.store.RedisStore.load`, which decodes with :mod:`state.codec`), one
partition after the other: a partition is one hash tag, so in a Redis Cluster each step
runs on the master owning that partition's slot and the walk covers every node.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence

from schemas.errors import RfmStreamError
from segments.model import CustomerState
from state.connection import unavailable_as_error
from state.layout import recorded_layout
from state.store import RedisStore

__all__ = ["UnknownNamespace", "held", "load_states", "namespace_partitions", "walk_states"]


class UnknownNamespace(RfmStreamError):
    """A namespace Redis holds nothing of (a typo, or one dropped)."""


async def namespace_partitions(store: RedisStore) -> int:
    """The partition count the store's namespace was built with; refuses a namespace
    with no recorded layout (every worker, backfill and import records one first)."""
    built = await recorded_layout(store)
    if built is None:
        raise UnknownNamespace(
            f"unknown namespace {store.keys.namespace!r}: redis holds no layout for it"
        )
    return built[0]


async def walk_states(
    store: RedisStore, partitions: Iterable[int], chunk: int = 1000
) -> AsyncIterator[list[CustomerState]]:
    """Every customer of ``partitions``, about ``chunk`` at a time, each exactly once.

    SCAN may return a key twice (the table was resized during the walk): the ids of a
    partition already yielded are remembered until the partition is done, so the memory
    held is one partition's ids (a dry run counts every customer once; a sweep doesn't
    need this, the customer's stamp spares a second re-evaluation).
    """
    for p in partitions:
        seen: set[str] = set()
        cursor = 0
        while True:
            cursor, found = await store.scans.scan_customers(p, cursor, chunk)
            ids = [c for c in dict.fromkeys(found) if c not in seen]
            seen.update(ids)
            if ids:
                states = (await store.load(p, ids)).states
                got = [states[c] for c in ids if c in states]  # gone since the SCAN: skip
                if got:
                    yield got
            if cursor == 0:
                break


async def held(store: RedisStore, partition: int, customer_ids: Sequence[str]) -> set[str]:
    """Which of ``customer_ids`` the partition holds: EXISTS in one pipeline (one slot, so
    one master of a cluster), cheaper than loading and decoding states nobody reads."""
    if not customer_ids:
        return set()
    client = await store.connect()
    async with unavailable_as_error(), client.pipeline(transaction=False) as pipe:
        for c in customer_ids:
            pipe.exists(store.keys.customer(partition, c))
        found = await pipe.execute()
    return {c for c, n in zip(customer_ids, found, strict=True) if n}


async def load_states(
    store: RedisStore, partition: int, customer_ids: Sequence[str]
) -> dict[str, CustomerState]:
    """The states of ``customer_ids`` in one partition (absent ones left out)."""
    if not customer_ids:
        return {}
    return (await store.load(partition, customer_ids)).states
