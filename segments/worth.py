"""What each segment is worth, kept exactly by deltas: revenue, orders, and a Pareto summary.

Issue #19 asks, per scheme and segment, for net revenue, its share and the average order
value, and for the base the revenue share of the top 1 % / 20 % of customers (二八定律),
all live and with no scan on read. Like the segment sizes, they are running sums that
each commit moves by the difference between the customers' states before and after it:

* a customer in segment ``G`` of a scheme holds ``M`` (net spend, fixed-point units) and
  ``F`` (orders still holding money) there: a change of ``M`` inside ``G`` is ``+ΔM`` to
  ``G``; a move ``G1 → G2`` is ``−M_old`` from ``G1`` and ``+M_new`` to ``G2``; the first
  purchase adds, a full refund (segment back to ``none``) removes. So after any sequence
  of commits the sums equal a recount of the stored states.
* the **Pareto summary** keeps the base's ``M`` (customers with ``F > 0``) in fixed log
  buckets of :data:`ACCURACY`, with the count *and* the sum of each bucket, moved the
  same way. The top ``k`` customers' revenue is then exact for every bucket wholly
  above the cut, and bounded for the one bucket the cut straddles (:func:`pareto`).

CLV totals are not kept here (see README "What each segment is worth"): a customer's
CLV moves with time and with each model refit, so an exact running sum needs each
customer's last CLV stored, which the 400 B/customer budget has no room for.

Pure: no I/O, no clock; the field names of the Redis hashes are the stream's business
(:mod:`stream.apply.tallies`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TypeVar

from segments.buckets import ZERO_BUCKET, Buckets
from segments.model import NONE, CustomerState

__all__ = [
    "ACCURACY",
    "BUCKETS",
    "PARETO_SHARES",
    "Holding",
    "ParetoPoint",
    "SegmentWorth",
    "WorthDeltas",
    "deltas",
    "holdings",
    "pareto",
    "recount",
]

ACCURACY = Fraction(1, 100)
"""Relative width of the Pareto buckets (1 %): the bucket a cut straddles holds values
within a factor (1+a)/(1−a) of each other, which bounds the error of the top-k revenue
(:func:`pareto`); ~480 buckets span real spends, two fields each per partition."""
BUCKETS = Buckets.log(ACCURACY)
PARETO_SHARES = (Fraction(1, 100), Fraction(1, 5))
"""The Pareto view's cuts: the top 1 % (the pyramid's VIPs) and the top 20 % (二八定律)."""


@dataclass(frozen=True, slots=True)
class Holding:
    """What one customer contributes to the sums: ``M``, ``F`` and their segments."""

    monetary: int
    frequency: int
    segments: tuple[tuple[str, str], ...]
    """(scheme, segment) of every scheme the customer is in (``none`` left out)."""


def holdings(states: Iterable[CustomerState]) -> list[Holding]:
    """Snapshot ``states`` (taken before and after a change; the engine edits in place)."""
    return [
        Holding(
            s.monetary,
            s.frequency,
            tuple((k, v) for k, v in s.segments.items() if v != NONE),
        )
        for s in states
    ]


@dataclass(slots=True)
class WorthDeltas:
    """What one change adds to the running sums (zeros left out)."""

    revenue: dict[tuple[str, str], int] = field(default_factory=dict)
    """(scheme, segment) -> Δ net revenue (units)."""
    orders: dict[tuple[str, str], int] = field(default_factory=dict)
    """(scheme, segment) -> Δ orders."""
    counts: dict[int, int] = field(default_factory=dict)
    """Pareto bucket -> Δ customers of the base."""
    sums: dict[int, int] = field(default_factory=dict)
    """Pareto bucket -> Δ their net revenue (units)."""

    def __bool__(self) -> bool:
        return bool(self.revenue or self.orders or self.counts or self.sums)


_K = TypeVar("_K")


def _add(target: dict[_K, int], key: _K, delta: int) -> None:
    target[key] = target.get(key, 0) + delta


def deltas(before: Sequence[Holding], after: Sequence[Holding]) -> WorthDeltas:
    """The sums' change when customer ``i`` goes from ``before[i]`` to ``after[i]``.

    Pair by pair, and only what moved: a customer whose M and F stayed costs no bucket
    lookup, one who stayed in their segments adds ΔM and ΔF there (the apply path runs
    this for every customer of every commit)."""
    if len(before) != len(after):
        raise ValueError(f"before has {len(before)} customers but after has {len(after)}")
    out = WorthDeltas()
    for b, a in zip(before, after, strict=True):
        if b == a:
            continue
        if b.segments == a.segments:
            dm, df = a.monetary - b.monetary, a.frequency - b.frequency
            for key in a.segments:
                _add(out.revenue, key, dm)
                _add(out.orders, key, df)
        else:
            for key in b.segments:
                _add(out.revenue, key, -b.monetary)
                _add(out.orders, key, -b.frequency)
            for key in a.segments:
                _add(out.revenue, key, a.monetary)
                _add(out.orders, key, a.frequency)
        if (b.frequency > 0, b.monetary) != (a.frequency > 0, a.monetary):
            if b.frequency > 0:
                k = BUCKETS.index_one(b.monetary)
                _add(out.counts, k, -1)
                _add(out.sums, k, -b.monetary)
            if a.frequency > 0:
                k = BUCKETS.index_one(a.monetary)
                _add(out.counts, k, 1)
                _add(out.sums, k, a.monetary)
    out.revenue = {k: v for k, v in out.revenue.items() if v}
    out.orders = {k: v for k, v in out.orders.items() if v}
    out.counts = {k: v for k, v in out.counts.items() if v}
    out.sums = {k: v for k, v in out.sums.items() if v}
    return out


def recount(states: Iterable[CustomerState]) -> WorthDeltas:
    """The sums of ``states`` from nothing: what the running sums must equal."""
    now = holdings(states)
    return deltas([Holding(0, 0, ())] * len(now), now)


@dataclass(frozen=True, slots=True)
class SegmentWorth:
    """One segment's figures, read from the running sums."""

    customers: int
    revenue: int
    """Net revenue of its members (units)."""
    orders: int

    @property
    def average_order(self) -> Fraction | None:
        """AOV = revenue / orders (units); None for a segment with no orders."""
        return Fraction(self.revenue, self.orders) if self.orders else None


@dataclass(frozen=True, slots=True)
class ParetoPoint:
    """The revenue of the top ``share`` of the base, exact up to one bucket.

    ``low ≤ true revenue of the top customers ≤ high``, both in units; they are equal
    when the cut falls between buckets.
    """

    share: Fraction
    customers: int
    low: int
    high: int
    total: int

    @property
    def share_low(self) -> float:
        return self.low / self.total if self.total else 0.0

    @property
    def share_high(self) -> float:
        return self.high / self.total if self.total else 0.0


def _lower_edge(b: int) -> int:
    """The smallest value of bucket ``b`` (the zero bucket holds values ≤ 0: its floor
    is 0 here, as a base member's net spend is never negative)."""
    if b <= ZERO_BUCKET:
        return 0
    return 1 if b == 1 else BUCKETS.upper(b - 1) + 1


def pareto(
    counts: Mapping[int, int],
    sums: Mapping[int, int],
    shares: Sequence[Fraction] = PARETO_SHARES,
) -> list[ParetoPoint]:
    """The top ``⌈share·n⌉`` customers' revenue for each share, from the bucket sums.

    Buckets above the cut count whole (exact). In the bucket the cut straddles, ``j`` of
    its ``c`` customers (sum ``s``, values in ``[lo, hi]``) are in the top: their sum is at
    least their share ``j·s/c`` (the top of a set averages at least its mean) and at least
    ``s − (c−j)·hi``; at most ``j·hi`` and ``s − (c−j)·lo``. Raises ``ValueError`` for a
    negative count (an update lost or applied twice).
    """
    negative = sorted(b for b, c in counts.items() if c < 0)
    if negative:
        raise ValueError(f"negative Pareto bucket counts at {negative[:5]}: a delta was lost")
    order = sorted((b for b, c in counts.items() if c), reverse=True)
    n = sum(counts[b] for b in order)
    total = sum(sums.get(b, 0) for b in order)
    out = []
    for share in shares:
        if not 0 <= share <= 1:
            raise ValueError(f"share must be in [0, 1], got {share}")
        k = math.ceil(share * n)
        low = high = 0
        left = k
        for b in order:
            if left == 0:
                break
            c, s = counts[b], sums.get(b, 0)
            if c <= left:
                low += s
                high += s
                left -= c
                continue
            lo, hi = _lower_edge(b), BUCKETS.upper(b)
            low += max(-(-left * s // c), s - (c - left) * hi)
            high += min(left * hi, s - (c - left) * lo)
            left = 0
        out.append(ParetoPoint(share, k, low, high, total))
    return out
