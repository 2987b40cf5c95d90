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

* **CLV and customer equity (客户资产)**: a customer's CLV moves with time and with each
  model refit, so the figure kept is "Σ of each customer's CLV as of their last
  evaluation": each commit stores the CLV it evaluated in the state
  (``CustomerState.clv``, cents; only while some scheme has ``value_figures`` and the
  base's model is fitted) and moves the sums by old → new exactly like ``M``. A refit
  re-evaluates everyone through the recalibration sweep, so the sums follow the model
  within one sweep. Per segment the sum and the number of customers holding a CLV are
  kept (the average divides them); for the base, the equity and its customers.

Pure: no I/O, no clock; the field names of the Redis hashes are the stream's business
(:mod:`stream.apply.tallies`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple, TypeVar

import numpy as np

from segments.buckets import ZERO_BUCKET, Buckets
from segments.model import NONE, Columns, CustomerState
from segments.value import ValueModel, ValuePolicy, figures

__all__ = [
    "ACCURACY",
    "BUCKETS",
    "PARETO_SHARES",
    "Equity",
    "Holding",
    "ParetoPoint",
    "SegmentWorth",
    "WorthDeltas",
    "clv_cents",
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
    clv: int | None = None
    """CLV as of the last evaluation (cents), None when none is kept."""


def holdings(states: Iterable[CustomerState]) -> list[Holding]:
    """Snapshot ``states`` (taken before and after a change; the engine edits in place)."""
    return [
        Holding(
            s.monetary,
            s.frequency,
            tuple((k, v) for k, v in s.segments.items() if v != NONE),
            s.clv,
        )
        for s in states
    ]


def clv_cents(
    model: ValueModel, policy: ValuePolicy, states: Sequence[CustomerState]
) -> list[int | None]:
    """Each customer's CLV in cents as of their cursor (their last evaluation), the
    figure the transitions' snapshots carry (:func:`segments.value.figures`); None for
    one with no order holding money (no purchase left: no lifetime to value)."""
    out: list[int | None] = [None] * len(states)
    at = [i for i, s in enumerate(states) if s.frequency > 0]
    if not at:
        return out
    picked = [states[i] for i in at]
    n = len(picked)
    cols = Columns(
        last_ms=np.fromiter((s.last_ms for s in picked), np.int64, n),
        frequency=np.fromiter((s.frequency for s in picked), np.int64, n),
        monetary=np.fromiter((s.monetary for s in picked), np.int64, n),
        first_ms=np.fromiter(
            (s.last_ms if s.first_ms is None else s.first_ms for s in picked), np.int64, n
        ),
    )
    asof = np.fromiter((s.cursor_ms for s in picked), np.int64, n)
    for i, f in zip(at, figures(model, policy, cols, asof), strict=True):
        out[i] = int(Decimal(str(f["clv"])) * 100)
    return out


class Equity(NamedTuple):
    """Customer equity (客户资产): the Σ of the base's CLVs as of each customer's last
    evaluation (cents), and how many customers hold one."""

    clv: int
    customers: int

    @property
    def average(self) -> Fraction | None:
        return Fraction(self.clv, self.customers) if self.customers else None


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
    clv: dict[tuple[str, str], int] = field(default_factory=dict)
    """(scheme, segment) -> Δ CLV of its members (cents)."""
    valued: dict[tuple[str, str], int] = field(default_factory=dict)
    """(scheme, segment) -> Δ members holding a CLV."""
    equity: Equity = field(default_factory=lambda: Equity(0, 0))
    """Δ of the base's customer equity."""

    def __bool__(self) -> bool:
        return bool(
            self.revenue
            or self.orders
            or self.counts
            or self.sums
            or self.clv
            or self.valued
            or self.equity != (0, 0)
        )


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
        if b.clv != a.clv or b.segments != a.segments:
            _clv_moves(out, b, a)
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
    out.clv = {k: v for k, v in out.clv.items() if v}
    out.valued = {k: v for k, v in out.valued.items() if v}
    return out


def _clv_moves(out: WorthDeltas, b: Holding, a: Holding) -> None:
    """The CLV sums' part of :func:`deltas`: out of the old segments with the old CLV,
    into the new ones with the new (a customer with no CLV kept counts in neither)."""
    if b.clv is not None:
        for key in b.segments:
            _add(out.clv, key, -b.clv)
            _add(out.valued, key, -1)
    if a.clv is not None:
        for key in a.segments:
            _add(out.clv, key, a.clv)
            _add(out.valued, key, 1)
    e = out.equity
    out.equity = Equity(
        e.clv + (a.clv or 0) - (b.clv or 0),
        e.customers + (a.clv is not None) - (b.clv is not None),
    )


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
    clv: int = 0
    """Σ of its members' CLVs as of their last evaluation (cents)."""
    valued: int = 0
    """Members holding a CLV (all of them once the model has been on for a sweep)."""

    @property
    def average_clv(self) -> Fraction | None:
        """Average CLV of the members holding one (cents); None when none does."""
        return Fraction(self.clv, self.valued) if self.valued else None

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
