"""Who would move where: the from → to matrices of a dry run, with samples. Pure, no I/O.

Both dry runs (``rfm-stream rules diff`` and ``rfm-stream diff``) feed pairs of a
customer's segments, before and after, into a :class:`Movement`; it keeps counts per
scheme and cell and a small sample of customer ids per cell. The sample is the
``sample`` smallest ids of the cell, not the first ones met: SCAN order changes from
one run (and one Redis) to the next, and an operator comparing two runs, or a test,
must see the same ids for the same base.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from segments.model import NONE

__all__ = ["ABSENT", "Cell", "Movement", "Sample", "SchemeMoves"]

ABSENT = "(absent)"
"""The segment of a customer a namespace does not hold (``rfm-stream diff``)."""


@dataclass
class Sample:
    """A count, and the ``size`` smallest ids counted (a deterministic sample)."""

    size: int
    count: int = 0
    ids: list[str] = field(default_factory=list)

    def add(self, customer_id: str) -> None:
        self.count += 1
        if self.size <= 0:
            return
        if len(self.ids) < self.size:
            insort(self.ids, customer_id)
        elif customer_id < self.ids[-1]:
            insort(self.ids, customer_id)
            del self.ids[-1]


@dataclass(frozen=True, slots=True)
class Cell:
    """One cell of a scheme's matrix: customers moving from ``source`` to ``target``."""

    source: str
    target: str
    count: int
    sample: tuple[str, ...]


@dataclass
class SchemeMoves:
    """One scheme's from → to matrix, and its segment sizes before and after."""

    size: int
    cells: dict[tuple[str, str], Sample] = field(default_factory=dict)
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)

    def add(self, customer_id: str, source: str, target: str) -> None:
        if source != ABSENT:
            self.before[source] = self.before.get(source, 0) + 1
        if target != ABSENT:
            self.after[target] = self.after.get(target, 0) + 1
        if source != target:
            cell = self.cells.get((source, target))
            if cell is None:
                cell = self.cells[(source, target)] = Sample(self.size)
            cell.add(customer_id)

    @property
    def moved(self) -> int:
        return sum(c.count for c in self.cells.values())

    def matrix(self) -> list[Cell]:
        """The non-empty cells, largest first (ties by name: a stable order)."""
        cells = [Cell(s, t, c.count, tuple(c.ids)) for (s, t), c in self.cells.items()]
        return sorted(cells, key=lambda c: (-c.count, c.source, c.target))


class Movement:
    """Per scheme, who moves from which segment to which; and how many were compared."""

    def __init__(self, schemes: Iterable[str], sample: int) -> None:
        if sample < 0:
            raise ValueError(f"bad sample: {sample} (at least 0)")
        self.sample = sample
        self.schemes: dict[str, SchemeMoves] = {s: SchemeMoves(sample) for s in schemes}
        self.customers = 0

    def add(
        self,
        customer_id: str,
        before: Mapping[str, str] | None,
        after: Mapping[str, str] | None,
    ) -> None:
        """One customer's segments before and after (None: not held on that side, so
        :data:`ABSENT`; a scheme the customer has no segment in yet: ``none``)."""
        self.customers += 1
        for name, moves in self.schemes.items():
            source = ABSENT if before is None else before.get(name, NONE)
            target = ABSENT if after is None else after.get(name, NONE)
            moves.add(customer_id, source, target)

    @property
    def moved(self) -> int:
        """Customers × schemes that move (a customer moving in two schemes counts twice)."""
        return sum(m.moved for m in self.schemes.values())
