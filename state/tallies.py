"""Reads of the running tallies the commits keep (segment sizes, hourly flows) and of
the schedule's backlog: the read side of ``GET /segments`` and ``/transitions/matrix``.

A mixin of :class:`~state.store.RedisStore` (its client, keys and connection handling).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from state.connection import RedisClient
from state.connection import unavailable_as_error as _unavailable_as_error
from state.keys import Keys

__all__ = ["TallyReads"]


class TallyReads:
    client: RedisClient
    keys: Keys
    connect: Callable[[], Awaitable[Any]]
    _settled: bool
    _due_count: Any  # the DUE_COUNT script, registered by the store

    async def segment_counts(self, partitions: Iterable[int]) -> dict[str, dict[str, int]]:
        """scheme -> segment -> customers in it now, over ``partitions`` (no scan)."""
        parts = list(partitions)
        c = self.client if self._settled else await self.connect()
        async with _unavailable_as_error(), c.pipeline(transaction=False) as pipe:
            for p in parts:
                pipe.hgetall(f"{self.keys.tag(p)}:{Keys.COUNTS}")
            raw = await pipe.execute()
        out: dict[str, dict[str, int]] = {}
        for h in raw:
            for field, n in h.items():
                scheme, _, segment = field.partition("|")
                seg = out.setdefault(scheme, {})
                seg[segment] = seg.get(segment, 0) + int(n)
        return out

    async def flows(
        self, partitions: Iterable[int], days: Sequence[str]
    ) -> dict[tuple[str, str, str, str, int], int]:
        """(day, scheme, from, to, hour) -> transitions, over ``partitions`` and ``days``
        (``YYYYMMDD``, UTC)."""
        parts = list(partitions)
        c = self.client if self._settled else await self.connect()
        async with _unavailable_as_error(), c.pipeline(transaction=False) as pipe:
            for day in days:
                for p in parts:
                    pipe.hgetall(f"{self.keys.tag(p)}:{Keys.flows(day)}")
            raw = await pipe.execute()
        out: dict[tuple[str, str, str, str, int], int] = {}
        it = iter(raw)
        for day in days:
            for _ in parts:
                for field, n in next(it).items():
                    hour, scheme, frm, to = field.split("|")
                    key = (day, scheme, frm, to, int(hour))
                    out[key] = out.get(key, 0) + int(n)
        return out

    async def due_count(self, partition: int, now_ms: int) -> int:
        """Customers whose due time has passed but the timer hasn't fired yet."""
        return (await self.schedule_counts(partition, now_ms))[0]

    async def schedule_counts(self, partition: int, now_ms: int) -> tuple[int, int]:
        """(customers due by ``now_ms`` but not fired yet, customers scheduled)."""
        if not self._settled:
            await self.connect()  # a cluster client (and its scripts) may replace ours
        p = partition
        keys = [self.keys.due(p), self.keys.schedule_index(p), self.keys.meta(p)]
        async with _unavailable_as_error():
            due, size = await self._due_count(keys=keys, args=[now_ms, self.keys.tag(p)])
        return int(due), int(size)

    async def schedule_size(self, partition: int) -> int:
        return (await self.schedule_counts(partition, -(2**62)))[1]
