"""Reads of the running tallies the commits keep (segment sizes, hourly flows) and of
the schedule's backlog: the read side of ``GET /segments`` and ``/transitions/matrix``.

A collaborator of :class:`~state.store.RedisStore` (``store.tallies``), built with the
store's connector and keys; the commits that keep the tallies are the store's own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from redis.commands.core import AsyncScript

from state.connection import Connector, RedisClient
from state.connection import unavailable_as_error as _unavailable_as_error
from state.keys import Keys
from state.schedule import DUE_COUNT

__all__ = ["TallyReads", "WorthSums"]


@dataclass(frozen=True, slots=True)
class WorthSums:
    """The worth hashes of a namespace, merged over partitions (``segments.worth``)."""

    revenue: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    """(scheme, segment) -> net revenue of its members (units)."""
    orders: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    """(scheme, segment) -> their orders."""
    counts: dict[int, int] = dataclasses.field(default_factory=dict)
    """Pareto bucket -> customers of the base."""
    sums: dict[int, int] = dataclasses.field(default_factory=dict)
    """Pareto bucket -> their net revenue (units)."""
    clv: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    """(scheme, segment) -> Σ of its members' last CLVs (cents); ``("", "")``: the base
    (customer equity)."""
    valued: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    """(scheme, segment) -> members holding a CLV; ``("", "")``: the base."""


class TallyReads:
    """Segment sizes, flows, the schedule's backlog and the quantile summaries of one
    namespace (no scan)."""

    def __init__(self, connector: Connector) -> None:
        self._connector = connector
        self._due_count: AsyncScript | None = None
        """The DUE_COUNT script, registered on ``_registered_on`` (a failed-over or new
        master loads it on NOSCRIPT; a new client, after cluster detection, needs it
        registered again)."""
        self._registered_on: RedisClient | None = None

    @property
    def _keys(self) -> Keys:
        """The store's keys at each call, never a copy: the store is re-pointed at a
        namespace's physical name after it is made, and a copy would keep reading the old
        one (sizes, flows and sweeps of a promoted namespace read its predecessor)."""
        return self._connector.keys

    async def segment_counts(self, partitions: Iterable[int]) -> dict[str, dict[str, int]]:
        """scheme -> segment -> customers in it now, over ``partitions`` (no scan)."""
        parts = list(partitions)
        c = await self._connector.connect()
        async with _unavailable_as_error(), c.pipeline(transaction=False) as pipe:
            for p in parts:
                pipe.hgetall(f"{self._keys.tag(p)}:{Keys.COUNTS}")
            raw: list[dict[str, str]] = await pipe.execute()
        out: dict[str, dict[str, int]] = {}
        for h in raw:
            for field, n in h.items():
                scheme, _, segment = field.partition("|")
                seg = out.setdefault(scheme, {})
                seg[segment] = seg.get(segment, 0) + int(n)
        return out

    async def worth(self, partitions: Iterable[int]) -> WorthSums:
        """Net revenue, orders and CLV per segment, customer equity and the base's
        Pareto summary, over
        ``partitions`` (two hashes each, one pipelined trip, no scan)."""
        parts = list(partitions)
        c = await self._connector.connect()
        async with _unavailable_as_error(), c.pipeline(transaction=False) as pipe:
            for p in parts:
                pipe.hgetall(f"{self._keys.tag(p)}:{Keys.WORTH}")
                pipe.hgetall(f"{self._keys.tag(p)}:{Keys.PARETO}")
            raw: list[dict[str, str]] = await pipe.execute()
        out = WorthSums()
        fields = {"m": out.revenue, "f": out.orders, "c": out.clv, "k": out.valued}
        for worth, pareto in zip(raw[::2], raw[1::2], strict=True):
            for f, n in worth.items():
                scheme, segment, what = f.rsplit("|", 2)
                into = fields[what]
                into[(scheme, segment)] = into.get((scheme, segment), 0) + int(n)
            for f, n in pareto.items():
                what, _, bucket = f.partition("|")
                into_b = out.counts if what == "c" else out.sums
                into_b[int(bucket)] = into_b.get(int(bucket), 0) + int(n)
        return out

    async def flows(
        self, partitions: Iterable[int], days: Sequence[str]
    ) -> dict[tuple[str, str, str, str, int], int]:
        """(day, scheme, from, to, hour) -> transitions, over ``partitions`` and ``days``
        (``YYYYMMDD``, UTC)."""
        parts = list(partitions)
        c = await self._connector.connect()
        async with _unavailable_as_error(), c.pipeline(transaction=False) as pipe:
            for day in days:
                for p in parts:
                    pipe.hgetall(f"{self._keys.tag(p)}:{Keys.flows(day)}")
            raw: list[dict[str, str]] = await pipe.execute()
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
        script = await self._script()
        p = partition
        keys = [self._keys.due(p), self._keys.schedule_index(p), self._keys.meta(p)]
        async with _unavailable_as_error():
            due, size = await script(keys=keys, args=[now_ms, self._keys.tag(p)])
        return int(due), int(size)

    async def schedule_size(self, partition: int) -> int:
        return (await self.schedule_counts(partition, -(2**62)))[1]

    async def schedule_gauges(
        self, partitions: Iterable[int], now_ms: int
    ) -> dict[str, dict[int, float]]:
        """``rfm_schedule_size`` and ``rfm_due_not_fired`` per partition, from one count
        each (the scheduled total doesn't depend on ``now_ms``)."""
        sizes: dict[int, float] = {}
        due: dict[int, float] = {}
        for p in partitions:
            due[p], sizes[p] = await self.schedule_counts(p, now_ms)
        return {"rfm_schedule_size": sizes, "rfm_due_not_fired": due}

    async def _script(self) -> AsyncScript:
        """DUE_COUNT on the client in use (registering computes its SHA, no I/O)."""
        client = await self._connector.connect()
        if self._due_count is None or self._registered_on is not client:
            self._due_count = client.register_script(DUE_COUNT)
            self._registered_on = client
        return self._due_count

    async def summaries(
        self, partitions: Iterable[int], populations: Sequence[str]
    ) -> dict[str, dict[int, int]]:
        """Every partition's summary of each population, merged (one pipelined trip)."""
        parts = list(partitions)
        c = await self._connector.connect()
        async with _unavailable_as_error(), c.pipeline(transaction=False) as pipe:
            for name in populations:
                for p in parts:
                    pipe.hgetall(self._keys.summary(p, name))
            raw = await pipe.execute()
        out: dict[str, dict[int, int]] = {}
        it = iter(raw)
        for name in populations:
            merged: dict[int, int] = {}
            for _ in parts:
                for bucket, count in next(it).items():
                    b = int(bucket)
                    merged[b] = merged.get(b, 0) + int(count)
            out[name] = {b: c for b, c in merged.items() if c}
        return out
