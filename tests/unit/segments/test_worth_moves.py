"""The worth sums' fast path (marks + moved, the apply path's) equals the reference.

The reference is the per-Holding loop ``segments.worth.deltas`` had before it was inlined
(copied below, unchanged): on random before/after states, ``moved(marks(before), after)``
and ``deltas(holdings(before), holdings(after))`` must both give exactly what it gives.
"""

from __future__ import annotations

import copy
from typing import TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from segments.model import NONE, CustomerState
from segments.worth import (
    BUCKETS,
    Equity,
    Holding,
    WorthDeltas,
    deltas,
    holdings,
    marks,
    moved,
)

K = TypeVar("K")


# ------------------------------------------------------------------ the reference
def _add(target: dict[K, int], key: K, delta: int) -> None:
    target[key] = target.get(key, 0) + delta


def reference(before: list[Holding], after: list[Holding]) -> WorthDeltas:
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


# ------------------------------------------------------------------ random states
SEGMENTS = st.sampled_from([NONE, "a", "b", "c"])
SCHEMES = ("x", "y", "z")


@st.composite
def states(draw: st.DrawFn, cid: str) -> CustomerState:
    # a scheme may be absent (a rules change), ``none`` or in a segment; few values, so
    # that before and after often agree in part (the branches of the loop)
    segs = {k: draw(SEGMENTS) for k in SCHEMES if draw(st.booleans()) or draw(st.booleans())}
    return CustomerState(
        cid,
        frequency=draw(st.integers(0, 3)),
        monetary=draw(st.sampled_from([0, 1, 99, 150, 10**6, 10**12 + 7])),
        segments=segs,
        clv=draw(st.none() | st.sampled_from([0, 5, 12_345])),
    )


@st.composite
def changes(draw: st.DrawFn) -> tuple[list[CustomerState], list[CustomerState]]:
    n = draw(st.integers(0, 12))
    before = [draw(states(f"c{i}")) for i in range(n)]
    after = []
    for b in before:  # often unchanged or changed in one field only, as a commit does
        how = draw(st.sampled_from(["same", "field", "any"]))
        if how == "same":
            after.append(copy.deepcopy(b))
        elif how == "field":
            a = copy.deepcopy(b)
            other = draw(states(b.customer_id))
            name = draw(st.sampled_from(["frequency", "monetary", "segments", "clv"]))
            setattr(a, name, getattr(other, name))
            after.append(a)
        else:
            after.append(draw(states(b.customer_id)))
    return before, after


@settings(max_examples=400, deadline=None)
@given(changes())
def test_moved_and_deltas_equal_the_reference(
    change: tuple[list[CustomerState], list[CustomerState]],
) -> None:
    before, after = change
    want = reference(holdings(before), holdings(after))
    assert deltas(holdings(before), holdings(after)) == want
    assert moved(marks(before), after) == want


def test_a_none_entry_alone_moves_nothing() -> None:
    """Segments that differ only by a ``none`` entry take the "moved" branch of the fast
    path, whose terms must cancel: no field, no equity."""
    b = CustomerState("c", frequency=1, monetary=100, segments={"x": "a"}, clv=7)
    a = CustomerState("c", frequency=1, monetary=100, segments={"x": "a", "y": NONE}, clv=7)
    assert not moved(marks([b]), [a])


def test_moved_refuses_unpaired_input() -> None:
    try:
        moved(marks([CustomerState("c")]), [])
    except ValueError as exc:
        assert "1 customers" in str(exc)
    else:
        raise AssertionError("moved took 1 mark and 0 states")
