"""The customer pyramid over its period: tier shares of 1 / 19 / 30 / 50 % (issue #20).

Every count goes through the real path: per-partition summaries from deltas
(``Populations.deltas`` → ``sketch.deltas``), merged (``sketch.merge``), cut points
(``Populations.cut_points``), then the pyramid's cells (``GridScheme.classify``). The
guarantee checked is the one ``Populations.cut_points`` documents: each cut is exact in
rank but for the customers tied with the one at the cut (same summary bucket), who go
to the tier below.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest

from schemas.rules import load_rules
from schemas.times import DAY_MS
from segments import CustomerState, Engine, Purchase, sketch
from segments.check import build_scheme
from segments.model import Columns
from segments.quantiles import Population, Populations
from segments.windows import day_of, expires_at

UNIT = 10_000
NOW = 1_000 * DAY_MS
SPEC = load_rules(None).schemes["pyramid"]
TIERS = ("vip", "major", "ordinary", "small")
PARTITIONS = 4
MONEY = Population("m", 365 * DAY_MS).buckets
LIFETIME_M = SPEC.axes.m.model_copy(update={"window": None}) if SPEC.axes.m else None


def _customers(spends: np.ndarray, stamp: str, day: int) -> list[CustomerState]:
    """One order each on ``day`` (in the period), worth ``spends``, evaluated under ``stamp``."""
    return [
        CustomerState(
            f"c{i}", 1, v, day * DAY_MS, day * DAY_MS, day * DAY_MS, days={day: [1, v]}, stamp=stamp
        )
        for i, v in enumerate(spends.tolist())
    ]


def tiers(spends: np.ndarray) -> dict[str, int]:
    """Customers per tier when customer ``i`` spent ``spends[i]`` in the period: states
    through ``Populations`` (values in the window, deltas), the windowed cells."""
    engine = Engine([build_scheme("pyramid", SPEC)])
    states = _customers(spends, engine.stamp, day_of(NOW) - 10)
    pops = Populations(engine.schemes, engine.rules_version)
    parts = []
    for p in range(PARTITIONS):  # each partition's summary: everyone arrives, as deltas
        mine = states[p::PARTITIONS]
        after = pops.snapshot(mine)
        absent = {k: (v, np.zeros(len(mine), bool)) for k, (v, _) in after.items()}
        parts.append(pops.deltas(absent, after))
    merged = {p.name: sketch.merge(*(d.get(p.name, {}) for d in parts)) for p in pops.items}
    cuts = pops.cut_points(engine.schemes, merged, NOW, version=1, population=len(states))
    pyramid = build_scheme("pyramid", SPEC, cuts.thresholds["pyramid"])
    keys = pyramid.classify(Columns.of(states), np.full(len(states), NOW))
    return {t: int((keys == t).sum()) for t in TIERS}


def tiers_vectorised(spends: np.ndarray) -> dict[str, int]:
    """:func:`tiers` on arrays (100,000 customers in well under a second): the same
    ``sketch.deltas`` per partition, merge and ``cut_points``; the cells read the spends
    as a lifetime column, which is what the period holds for these customers (one
    purchase each, inside it). The two agree on 1,000 customers (tested)."""
    engine = Engine([build_scheme("pyramid", SPEC)])
    pops = Populations(engine.schemes, engine.rules_version)
    (pop,) = pops.items
    n = spends.size
    parts = [
        sketch.deltas(pop.buckets, np.zeros(m.size, np.int64), np.zeros(m.size, bool), m, m > 0)
        for m in (spends[p::PARTITIONS] for p in range(PARTITIONS))
    ]
    cuts = pops.cut_points(engine.schemes, {pop.name: sketch.merge(*parts)}, NOW, version=1)
    lifetime = SPEC.model_copy(update={"axes": SPEC.axes.model_copy(update={"m": LIFETIME_M})})
    pyramid = build_scheme("pyramid", lifetime, cuts.thresholds["pyramid"])
    ones, at = np.ones(n, np.int64), np.full(n, NOW - 10 * DAY_MS)
    keys = pyramid.classify(Columns(at, ones, spends, first_ms=at), np.full(n, NOW))
    return {t: int((keys == t).sum()) for t in TIERS}


def shares(n: int) -> dict[str, int]:
    """The text's 1 / 19 / 30 / 50 % of ``n`` customers (10 / 190 / 300 / 500 of 1,000)."""
    top = {"vip": n - _rank(0.99, n), "major": n - _rank(0.8, n), "ordinary": n - _rank(0.5, n)}
    return {
        "vip": top["vip"],
        "major": top["major"] - top["vip"],
        "ordinary": top["ordinary"] - top["major"],
        "small": n - top["ordinary"],
    }


def _rank(q: float, n: int) -> int:
    """Rank (1-based, ascending) of the customer at quantile ``q`` (sketch's convention)."""
    return max(1, math.ceil(n * q))


def distinct_spends(n: int, seed: int) -> np.ndarray:
    """``n`` different spends (even ``n``) with no tie at a cut, shuffled: bucket ``j``
    above ¥0.50 holds the customers of ranks ``2j`` and ``2j + 1`` (its lowest and its
    highest amount), so every bucket boundary, and every even rank such as 500, 800 and
    990 of 1,000, lies between two customers of different buckets. (All customers apart
    is impossible at 100,000: there are 92,786 buckets in all of int64.)"""
    return np.random.default_rng(seed).permutation(_pairs(n))


@functools.cache
def _pairs(n: int) -> np.ndarray:
    first = MONEY.index_one(5_000)
    edges = [MONEY.upper(b) for b in range(first - 1, first + n // 2)]
    values = np.array([[lo + 1, hi] for lo, hi in itertools.pairwise(edges)], np.int64).ravel()
    assert np.unique(values).size == n
    values.setflags(write=False)
    return values


@pytest.mark.parametrize("n", [1_000, 100_000])
def test_tiers_hold_exactly_1_19_30_50_percent_without_ties(n: int) -> None:
    spends = distinct_spends(n, seed=n)
    got = tiers(spends) if n <= 1_000 else tiers_vectorised(spends)
    assert got == shares(n)
    assert shares(1_000) == {"vip": 10, "major": 190, "ordinary": 300, "small": 500}


def test_a_realistic_base_of_1000_has_no_ties_at_the_cuts_and_is_exact() -> None:
    """Lognormal spends in cents (median ¥300): at 1 % the median bucket alone held
    several customers; at 0.02 % the three cut buckets hold one each."""
    rng = np.random.default_rng(20)
    spends = np.rint(np.exp(rng.normal(np.log(300), 1.2, 1_000)) * 100).astype(np.int64) * 100
    assert tiers(spends) == {"vip": 10, "major": 190, "ordinary": 300, "small": 500}
    assert tiers_vectorised(spends) == tiers(spends)
    ranked = np.sort(spends)
    for q in (0.5, 0.8, 0.99):  # the precondition "without ties", checked not assumed
        b = MONEY.index_one(int(ranked[_rank(q, 1_000) - 1]))
        assert int((MONEY.index(spends) == b).sum()) == 1


@pytest.mark.parametrize("n", [1_000, 100_000])
def test_customers_tied_at_a_cut_all_go_to_the_tier_below(n: int) -> None:
    """Blocks of equal spends straddle the median and the top-1 % cut; the 80 % cut is
    clear of ties, so it stays exact."""
    spends = np.sort(distinct_spends(n, seed=1))
    mid, top = _rank(0.5, n), _rank(0.99, n)
    median_block = slice(mid - n // 50, mid + n // 50)  # ranks around the median, 4 % of n
    top_block = slice(top - 2, top + n // 400)  # straddles rank ⌈0.99 n⌉
    spends[median_block] = spends[median_block.start]
    spends[top_block] = spends[top_block.start]
    shuffled = np.random.default_rng(2).permutation(spends)
    got = tiers(shuffled) if n <= 1_000 else tiers_vectorised(shuffled)
    above_median, vip = n - median_block.stop, n - top_block.stop  # strictly above a block
    want = shares(n)
    assert got == {
        "vip": vip,
        "major": want["vip"] + want["major"] - vip,
        "ordinary": above_median - (want["vip"] + want["major"]),
        "small": n - above_median,
    }
    # the bound: short of the share by fewer than the block tied at the cut
    assert 0 < want["vip"] - got["vip"] < top_block.stop - top_block.start
    assert 0 < got["small"] - want["small"] < median_block.stop - median_block.start


def test_a_realistic_base_of_100000_is_within_the_ties_at_each_cut() -> None:
    """Lognormal spends in cents: each top share ("top 1 %", "top 20 %", "top 50 %")
    is never over-filled and short by fewer than the customers sharing the cut's
    bucket, which is a dozen at most here (1 % buckets: ~650 at the median)."""
    n = 100_000
    rng = np.random.default_rng(21)
    spends = np.rint(np.exp(rng.normal(np.log(300), 1.2, n)) * 100).astype(np.int64) * 100
    got = tiers_vectorised(spends)
    ranked, idx = np.sort(spends), MONEY.index(spends)
    top = {0.99: got["vip"], 0.8: got["vip"] + got["major"], 0.5: n - got["small"]}
    for q, held in top.items():
        k = _rank(q, n)
        tied = int((idx == MONEY.index_one(int(ranked[k - 1]))).sum())
        assert n - k - tied < held <= n - k, q
        assert tied <= 20, (q, tied)


def test_a_big_purchase_leaving_the_period_drops_the_customer_at_its_due_time() -> None:
    """Cut points from a base; a VIP whose only big purchase ages out of the 365 days
    falls to D at the end of that purchase's day + 365 days, from the schedule's due
    time (``next_due``), and the summaries' deltas move them to zero at that instant."""
    base = np.arange(1, 1_001, dtype=np.int64) * 100 * UNIT  # ¥100 … ¥100,000
    engine = Engine([build_scheme("pyramid", SPEC)])
    pops = Populations(engine.schemes, engine.rules_version)
    others = _customers(base, engine.stamp, day_of(NOW))
    absent = {k: (v, np.zeros(len(others), bool)) for k, (v, _) in pops.snapshot(others).items()}
    cuts = pops.cut_points(engine.schemes, pops.deltas(absent, pops.snapshot(others)), NOW, 1)
    thresholds = cuts.thresholds["pyramid"]
    engine = Engine([build_scheme("pyramid", SPEC, thresholds)])
    engine.cut_version = 1
    pops = Populations(engine.schemes, engine.rules_version)
    bought = NOW - 100 * DAY_MS + 5  # 100 days before NOW, inside the period
    states: dict[str, CustomerState] = {}
    before_any = pops.snapshot([CustomerState("v")])
    engine.apply_events(states, [Purchase("v", "big", bought, 200_000 * UNIT, "o1")])
    v = states["v"]
    assert v.segments["pyramid"] == "vip"
    joined = pops.deltas(before_any, pops.snapshot([v]))
    assert joined == {p.name: {p.buckets.index_one(200_000 * UNIT): 1} for p in pops.items}
    leave = expires_at(day_of(bought), 365 * DAY_MS)
    assert int(engine.next_due([v])[0]) == leave
    assert engine.advance([v], leave - 1).transitions == []
    before = pops.snapshot([v])
    out = engine.advance([v], leave)
    assert [(t.from_segment, t.to_segment, t.cause, t.effective_ms) for t in out.transitions] == [
        ("vip", "small", "recency_decay", leave)
    ]
    (name,) = (p.name for p in pops.items)
    moved = pops.deltas(before, pops.snapshot([v]))[name]
    assert moved == {sketch.ZERO_BUCKET: 1, MONEY.index_one(200_000 * UNIT): -1}
    assert v.monetary == 200_000 * UNIT  # lifetime spend kept: only the period forgets
