"""Per-partition work side by side on one event loop, failing like a plain loop would."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

__all__ = ["all_of"]

T = TypeVar("T")


async def all_of(work: Iterable[Awaitable[T]]) -> list[T]:
    """Await every item concurrently; then raise the first failure, if any.

    Partitions share nothing but the event loop (own lock, claim, offsets, keys), so one
    partition's Redis and broker round trips can overlap the others' instead of queueing
    behind them. Unlike a bare ``gather``, nothing is left running when this raises: a
    retry of the whole step never runs beside a partition still committing.
    """
    done = await asyncio.gather(*work, return_exceptions=True)
    results: list[T] = []
    for result in done:
        if isinstance(result, BaseException):
            raise result
        results.append(result)
    return results
