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
from typing import NamedTuple

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
    "Mark",
    "ParetoPoint",
    "SegmentWorth",
    "WorthDeltas",
    "clv_cents",
    "deltas",
    "holdings",
    "marks",
    "moved",
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


Mark = tuple[int, int, tuple[tuple[str, str], ...], int | None]
"""A customer's :class:`Holding` as a plain tuple (``monetary, frequency, segments, clv``),
the form :func:`moved` compares: taken of every customer twice per commit, a tuple costs
a fraction of a dataclass. ``segments`` may still hold ``none`` entries (they add nothing)."""


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


def marks(states: Iterable[CustomerState]) -> list[Mark]:
    """:func:`holdings` for :func:`moved`: the same facts, unfiltered, as tuples."""
    return [(s.monetary, s.frequency, tuple(s.segments.items()), s.clv) for s in states]


def moved(before: Sequence[Mark], states: Sequence[CustomerState]) -> WorthDeltas:
    """:func:`deltas` from the :func:`marks` of ``states`` taken before a change to them
    now (the apply path's form: no object per customer)."""
    if len(before) != len(states):
        raise ValueError(f"before has {len(before)} customers but after has {len(states)}")
    return _moves(zip(before, marks(states), strict=True))


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


def deltas(before: Sequence[Holding], after: Sequence[Holding]) -> WorthDeltas:
    """The sums' change when customer ``i`` goes from ``before[i]`` to ``after[i]``."""
    if len(before) != len(after):
        raise ValueError(f"before has {len(before)} customers but after has {len(after)}")
    return _moves(
        ((b.monetary, b.frequency, b.segments, b.clv), (a.monetary, a.frequency, a.segments, a.clv))
        for b, a in zip(before, after, strict=True)
    )


def _moves(pairs: Iterable[tuple[Mark, Mark]]) -> WorthDeltas:
    """:func:`deltas` of (before, after) pairs.

    Pair by pair, and only what moved: a customer whose M and F stayed costs no bucket
    lookup, one who stayed in their segments adds ΔM and ΔF there (the apply path runs
    this for every customer of every commit, so the adds are inlined). Segments ``none``
    are skipped here; a pair whose segments differ only by a ``none`` entry goes the
    "moved" way, whose terms then cancel to the same sums."""
    revenue: dict[tuple[str, str], int] = {}
    orders: dict[tuple[str, str], int] = {}
    counts: dict[int, int] = {}
    sums: dict[int, int] = {}
    clv: dict[tuple[str, str], int] = {}
    valued: dict[tuple[str, str], int] = {}
    equity_clv = equity_customers = 0
    index = BUCKETS.index_one
    for b, a in pairs:
        if b == a:
            continue
        bm, bf, bs, bc = b
        am, af, as_, ac = a
        same = bs == as_
        if same:
            dm, df = am - bm, af - bf
            for key in as_:
                if key[1] != NONE:
                    revenue[key] = revenue.get(key, 0) + dm
                    orders[key] = orders.get(key, 0) + df
        else:
            for key in bs:
                if key[1] != NONE:
                    revenue[key] = revenue.get(key, 0) - bm
                    orders[key] = orders.get(key, 0) - bf
            for key in as_:
                if key[1] != NONE:
                    revenue[key] = revenue.get(key, 0) + am
                    orders[key] = orders.get(key, 0) + af
        if bc != ac or not same:  # CLV: out of the old segments with the old, in with the new
            if bc is not None:
                for key in bs:
                    if key[1] != NONE:
                        clv[key] = clv.get(key, 0) - bc
                        valued[key] = valued.get(key, 0) - 1
                equity_clv -= bc
                equity_customers -= 1
            if ac is not None:
                for key in as_:
                    if key[1] != NONE:
                        clv[key] = clv.get(key, 0) + ac
                        valued[key] = valued.get(key, 0) + 1
                equity_clv += ac
                equity_customers += 1
        if bm != am or (bf > 0) != (af > 0):  # the Pareto buckets of the base
            if bf > 0:
                k = index(bm)
                counts[k] = counts.get(k, 0) - 1
                sums[k] = sums.get(k, 0) - bm
            if af > 0:
                k = index(am)
                counts[k] = counts.get(k, 0) + 1
                sums[k] = sums.get(k, 0) + am
    return WorthDeltas(
        {k: v for k, v in revenue.items() if v},
        {k: v for k, v in orders.items() if v},
        {k: v for k, v in counts.items() if v},
        {k: v for k, v in sums.items() if v},
        {k: v for k, v in clv.items() if v},
        {k: v for k, v in valued.items() if v},
        Equity(equity_clv, equity_customers),
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
