"""The worth sums (segments.worth): running deltas equal a recount, and the Pareto bounds."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segments import Engine, Purchase, Rfm8
from segments.model import CustomerState, Refund
from segments.worth import BUCKETS, WorthDeltas, deltas, holdings, pareto, recount
from tests.unit.segments.fixtures import Bands

K = TypeVar("K")
DAY = 86_400_000
UNIT = 10_000


def engine() -> Engine:
    return Engine(
        [Rfm8(recency_ms=30 * DAY, frequency_cut=3, monetary_cut_units=500 * UNIT), Bands()]
    )


def _into(mine: dict[K, int], theirs: dict[K, int]) -> None:
    for k, v in theirs.items():
        mine[k] = mine.get(k, 0) + v
        if not mine[k]:
            del mine[k]


def add(total: WorthDeltas, d: WorthDeltas) -> None:
    _into(total.revenue, d.revenue)
    _into(total.orders, d.orders)
    _into(total.counts, d.counts)
    _into(total.sums, d.sums)


# (customer, day, amount in whole units, refund share in eighths of its order: 0 = none)
steps = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 300), st.integers(1, 900), st.integers(0, 8)),
    min_size=1,
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(steps, st.integers(1, 6), st.integers(0, 400))
def test_running_sums_equal_a_recount_after_purchases_refunds_moves_and_decays(
    xs: list[tuple[int, int, int, int]], batch: int, later: int
) -> None:
    e = engine()
    states: dict[str, CustomerState] = {}
    running = WorthDeltas()
    events: list[Purchase | Refund] = []
    for i, (c, day, amount, eighths) in enumerate(xs):
        events.append(Purchase(f"c{c}", f"p{i}", day * DAY, amount * UNIT, f"o{i}"))
        if eighths:  # 8/8: the whole order back (a one-order customer leaves the base)
            back = amount * UNIT * eighths // 8
            events.append(Refund(f"c{c}", f"r{i}", (day + 1) * DAY, back, f"o{i}", "ref"))
    for start in range(0, len(events), batch):
        chunk = events[start : start + batch]
        touched = [states.setdefault(ev.customer_id, CustomerState(ev.customer_id)) for ev in chunk]
        touched = list({id(s): s for s in touched}.values())
        before = holdings(touched)
        e.apply_events(states, chunk)
        add(running, deltas(before, holdings(touched)))
        assert running == recount(states.values())
    everyone = list(states.values())
    before = holdings(everyone)
    e.advance(everyone, (300 + later) * DAY)  # time moves segments, not money
    add(running, deltas(before, holdings(everyone)))
    assert running == recount(states.values())


def test_first_purchase_adds_and_a_full_refund_takes_the_customer_out() -> None:
    e = engine()
    states: dict[str, CustomerState] = {}
    s = states.setdefault("c", CustomerState("c"))
    before = holdings([s])
    e.apply_events(states, [Purchase("c", "p", DAY, 120 * UNIT, "o")])
    first = deltas(before, holdings([s]))
    segment = s.segments["rfm8"]
    assert first.revenue[("rfm8", segment)] == 120 * UNIT
    assert first.orders[("rfm8", segment)] == 1
    assert first.counts == {BUCKETS.index_one(120 * UNIT): 1}
    before = holdings([s])
    e.apply_events(states, [Refund("c", "r", 2 * DAY, 120 * UNIT, "o", "ref")])
    gone = deltas(before, holdings([s]))
    assert s.frequency == 0
    assert gone.revenue == {k: -v for k, v in first.revenue.items()}
    assert gone.counts == {BUCKETS.index_one(120 * UNIT): -1}
    add(first, gone)
    assert not first


def _true_top(values: list[int], share: Fraction) -> int:
    return sum(sorted(values, reverse=True)[: math.ceil(share * len(values))])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.integers(1, 120), st.integers(1, 10**9)), min_size=0, max_size=300),
    st.sampled_from([Fraction(1, 100), Fraction(1, 5), Fraction(1, 2), Fraction(1), Fraction(0)]),
)
def test_pareto_bounds_hold_the_true_top_share(values: list[int], share: Fraction) -> None:
    states = [CustomerState(f"c{i}", frequency=1, monetary=v) for i, v in enumerate(values)]
    sums = recount(states)
    (point,) = pareto(sums.counts, sums.sums, [share])
    true = _true_top(values, share)
    assert point.low <= true <= point.high
    assert point.total == sum(values)
    assert point.customers == math.ceil(share * len(values))
    # the error is at most one straddled bucket's spread: within 2 % of the true top
    assert point.high - point.low <= Fraction(2, 100) * true + 1


def test_pareto_is_exact_when_the_cut_falls_between_buckets() -> None:
    values = [10_000] * 20 + [100] * 80  # the top 20 % are one whole bucket
    states = [CustomerState(f"c{i}", frequency=1, monetary=v) for i, v in enumerate(values)]
    sums = recount(states)
    top1, top20 = pareto(sums.counts, sums.sums)
    assert (top20.low, top20.high, top20.total) == (200_000, 200_000, 208_000)
    assert top20.share_low == top20.share_high == pytest.approx(200_000 / 208_000)
    # the top 1 % is one of 20 in a bucket: its mean is the floor, the edge the ceiling
    assert top1.customers == 1 and top1.low == 10_000 < top1.high <= 10_000 * 1.01


def test_a_negative_bucket_count_is_refused() -> None:
    with pytest.raises(ValueError, match="negative Pareto bucket"):
        pareto({3: -1}, {3: -50})
