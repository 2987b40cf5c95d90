"""Reads that walk the keyspace: background sweeps, the model's sample, ops tools.
Never on the per-event path.

A collaborator of :class:`~state.store.RedisStore` (``store.scans``), built with the
store's connector and keys.
"""

from __future__ import annotations

from typing import cast

from segments.model import CustomerState
from state import codec
from state.connection import Connector, scan_slot
from state.connection import unavailable_as_error as _unavailable_as_error
from state.keys import Keys
from state.namespaces import glob_escape

__all__ = ["SCAN_COUNT_MAX", "Scans", "customers_of"]

SCAN_COUNT_MAX = 4096
"""Largest SCAN COUNT a background step asks for (about 1-2 ms of Redis time each)."""


def customers_of(keys: Keys) -> str:
    """SCAN pattern over every customer hash of ``keys``' namespace, the prefix and the
    namespace escaped (a name is never a pattern, :func:`state.namespaces.glob_escape`)."""
    return glob_escape(f"{keys.prefix}:{{{keys.namespace}:") + "*}:c:*"


class Scans:
    """SCAN steps over one partition's customers, or over the whole namespace."""

    def __init__(self, connector: Connector) -> None:
        self._connector = connector

    @property
    def _keys(self) -> Keys:
        """The store's keys at each call, never a copy: the store is re-pointed at a
        namespace's physical name after it is made, and a copy would keep reading the old
        one (sizes, flows and sweeps of a promoted namespace read its predecessor)."""
        return self._connector.keys

    async def scan_partition(
        self, partition: int, cursor: int, count: int
    ) -> tuple[int, list[str]]:
        """One SCAN step over the partition's customers: (next cursor, ids); 0 = done.

        For background sweeps (rules change, recalibration), never the hot path. In a
        cluster the step runs on the master owning the partition's slot.
        """
        prefix = self._keys.customer(partition, "")
        c = await self._connector.connect()
        async with _unavailable_as_error():
            nxt, keys = await scan_slot(c, prefix, cursor, glob_escape(prefix) + "*", count)
        return nxt, [k[len(prefix) :] for k in keys]

    async def scan_customers(
        self, partition: int, cursor: int, want: int, calls: int = 16
    ) -> tuple[int, list[str]]:
        """About ``want`` of the partition's customers from ``cursor`` on, in at most
        ``calls`` SCAN steps: (next cursor, ids; 0 = done). May return more than ``want``
        (up to the last step's COUNT, at most 16 × ``want``), or none (the budget ran out
        first: go on from the cursor).

        SCAN walks the whole keyspace, every namespace and partition in it, so this
        partition's customers can be a small share of what each step visits: a Redis
        that also holds a backfill being built next to the live namespace, or old ones.
        With COUNT = ``want`` a sweep's round trips grew with all of that / ``want`` (a
        30-customer sweep with a batch of 7 next to 300k other keys took over a minute);
        the COUNT doubles while few come back, up to 16 × ``want`` and ``SCAN_COUNT_MAX``,
        so they grow with it / that. The cap bounds what one step can return where a
        server scans slot by slot (a cluster node keeps each slot's keys together, and a
        partition is one slot), and ``calls`` bounds a step's Redis time (it runs under
        the partition's lock).
        """
        count, ids = max(1, want), []
        enough = max(1, want // 2)
        for _ in range(calls):
            cursor, found = await self.scan_partition(partition, cursor, count)
            ids += found
            if cursor == 0 or len(ids) >= enough:
                break
            if 2 * len(found) < enough:  # sparse here: visit more per round trip
                count = min(count * 2, max(want, min(SCAN_COUNT_MAX, 16 * want)))
        return cursor, ids

    async def scan_states(self, count: int = 1000) -> list[CustomerState]:
        """Every customer of the namespace (ops/demo summaries; not on any hot path)."""
        out = []
        c = await self._connector.connect()
        async with _unavailable_as_error():
            async for key in c.scan_iter(customers_of(self._keys), count=count):
                cid = key.split(":c:", 1)[1]
                flat = cast(dict[str, str], await c.hgetall(key))  # decoded (state.connection)
                if flat:
                    out.append(codec.decode_state(cid, flat))
        return out
