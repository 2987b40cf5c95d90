"""Where the win-back counters live and how they are read back (``GET /winback``).

One hash per partition per cohort month, ``{prefix}:{ns:p}:wb:<YYYYMM>``, fields as
:func:`segments.winback.counter_fields` names them; written by the commit script with the
other tallies (HINCRBY, atomic with the states), expiring like the hourly flows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from state.connection import Connector
from state.connection import unavailable_as_error as _unavailable_as_error

__all__ = ["WinbackReads", "winback_hash"]


def winback_hash(month: str) -> str:
    """Partition-relative name of one cohort month's win-back counters (``YYYYMM``)."""
    return f"wb:{month}"


class WinbackReads:
    """Sums of the win-back counter fields over partitions and months (no scan)."""

    def __init__(self, connector: Connector) -> None:
        self._connector = connector

    async def fields(self, partitions: Iterable[int], months: Sequence[str]) -> dict[str, int]:
        """field -> sum over ``partitions`` of the hashes of ``months``."""
        parts = list(partitions)
        keys = self._connector.keys
        c = await self._connector.connect()
        async with _unavailable_as_error(), c.pipeline(transaction=False) as pipe:
            for month in months:
                for p in parts:
                    pipe.hgetall(f"{keys.tag(p)}:{winback_hash(month)}")
            raw: list[dict[str, str]] = await pipe.execute()
        out: dict[str, int] = {}
        for h in raw:
            for name, n in h.items():
                out[name] = out.get(name, 0) + int(n)
        return out
