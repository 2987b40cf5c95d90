"""Cut points from summaries: the populations a rules file needs, and their thresholds."""

from __future__ import annotations

import hashlib
from fractions import Fraction

import numpy as np
import pytest

from schemas.rules import load_rules
from segments import CustomerState, Engine, quantiles, sketch
from segments.check import build_scheme
from segments.cut_points import CutPoints
from segments.model import Columns
from segments.quantiles import Population, Populations, counted

DAY = 86_400_000
UNIT = 10_000
RULES = load_rules("rfm")  # the RFM file: its populations are f, m and r


def schemes(thresholds=None):
    return [build_scheme(n, s, (thresholds or {}).get(n)) for n, s in RULES.schemes.items()]


RV = Engine(schemes()).rules_version
YEAR = 365 * DAY


def test_shipped_rules_summarise_f_m_the_years_m_and_last_purchase() -> None:
    pops = Populations(schemes(), RV)
    assert [p.quantity for p in pops.items] == ["f", "m", f"m@{YEAR}", "r"]
    assert [p.name for p in pops.items] == [f"{q}/{RV}" for q in ("f", "m", f"m@{YEAR}", "r")]
    assert not Populations(schemes()[:2], RV)  # rfm8 and rfm27 have fixed cuts only


def test_money_is_summarised_at_0_02_percent_counts_at_1_percent_times_by_day(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rules version hashes the bucketings: another one starts new summaries."""
    kinds = {p.quantity: p.buckets.describe() for p in Populations(schemes(), RV).items}
    assert kinds == {
        "f": "log:a=1/100:int-edges",
        "m": "log:a=1/5000:int-edges",
        f"m@{YEAR}": "log:a=1/5000:int-edges",
        "r": f"linear:width={DAY}",
    }
    assert Population("a").buckets == Population("m").buckets  # average spend is money
    assert Engine(schemes()).rules_version == RV  # same rules, same bucketings
    monkeypatch.setattr(quantiles, "MONEY_ACCURACY", Fraction(1, 100))
    assert Engine(schemes()).rules_version != RV  # same rules, 1 % money: a new version
    fixed = schemes()[:2]  # rfm8 and rfm27: no summaries, so the version of before (no sweep)
    text = "|".join(s.describe() for s in fixed).encode()
    assert Engine(fixed).rules_version == hashlib.blake2b(text, digest_size=6).hexdigest()


def test_a_customer_counts_once_evaluated_under_the_summaries_rules() -> None:
    s = CustomerState("c", frequency=1, monetary=5, stamp=f"{RV}/3")
    assert counted(s, RV)
    assert not counted(s, "0123456789ab")  # stamped under other rules: not in these
    assert not counted(CustomerState("d", stamp=f"{RV}/3"), RV)  # no order holds money
    assert not counted(CustomerState("e", frequency=1), RV)  # never evaluated (older state)


def _customers(monetary: np.ndarray, last: np.ndarray, freq: np.ndarray) -> list[CustomerState]:
    return [
        CustomerState(
            f"c{i}",
            int(f),
            int(m),
            0,
            int(t),
            int(t),
            days={int(t) // DAY: [1, int(m)]},
            stamp=f"{RV}/0",
        )
        for i, (m, t, f) in enumerate(zip(monetary, last, freq, strict=True))
    ]


def test_pyramid_from_summaries_of_a_large_population_lands_on_1_20_50_percent() -> None:
    rng = np.random.default_rng(11)
    n = 100_000
    monetary = np.round(np.exp(rng.normal(np.log(300), 1.2, n)) * UNIT).astype(np.int64)
    last = rng.integers(0, 365 * DAY, n)
    freq = rng.geometric(0.35, n)
    states = _customers(monetary, last, freq)
    pops = Populations(schemes(), RV)
    absent = {k: (v[0], np.zeros(n, bool)) for k, v in pops.snapshot(states).items()}
    summaries = pops.deltas(absent, pops.snapshot(states))  # everyone arrives at once
    cuts = pops.cut_points(schemes(), summaries, 365 * DAY, version=3, population=n)
    assert CutPoints.from_json(cuts.to_json()) == cuts
    pyramid = build_scheme("pyramid", RULES.schemes["pyramid"], cuts.thresholds["pyramid"])
    keys = pyramid.classify(Columns.of(states), np.full(n, 365 * DAY))
    share = {k: float((keys == k).mean()) for k in ("vip", "major", "ordinary", "small")}
    # never over-filled above a cut; under-filled by at most the customers of the one
    # summary bucket (values within ~0.04 %) holding the quantile: a few dozen here
    assert 0.0099 <= share["vip"] <= 0.01
    assert 0.1995 <= share["vip"] + share["major"] <= 0.20
    assert 0.50 <= share["small"] <= 0.5005
    # R quintiles: the most recent fifth (to the day) in the top band of rfm125
    rfm125 = build_scheme("rfm125", RULES.schemes["rfm125"], cuts.thresholds["rfm125"])
    r = rfm125.scores(Columns.of(states), np.full(n, 365 * DAY))["r"]
    assert abs(float((r == 5).mean()) - 0.2) < 0.01
    assert abs(float((r == 1).mean()) - 0.2) < 0.01


def test_no_thresholds_while_a_population_is_empty() -> None:
    cuts = Populations(schemes(), RV).cut_points(schemes(), {}, 0, version=1)
    assert cuts.thresholds == {}
    assert sketch.size({}) == 0


def _shortfall(buckets: sketch.Buckets, values: np.ndarray, q: float) -> int:
    """How many customers fewer than its share the band above the q cut holds."""
    (b,) = sketch.quantile_buckets(buckets, sketch.summarize(buckets, values), [q])
    k = max(1, int(np.ceil(values.size * q)))
    above = int((values > buckets.upper(b)).sum())
    assert above <= values.size - k  # never over-filled
    return values.size - k - above


def test_quintiles_and_medians_on_money_are_no_worse_than_at_1_percent() -> None:
    """rfm125's M quintiles and the management schemes' A / M medians use the same cut
    rule: at 0.02 % each band above a cut is at least as full as at 1 % (here 100×
    closer: a dozen customers short instead of over a thousand)."""
    rng = np.random.default_rng(5)
    money = np.rint(np.exp(rng.normal(np.log(300), 1.2, 200_000)) * 100).astype(np.int64) * 100
    old, new = sketch.Buckets.log(0.01), Population("m").buckets
    for q in (0.2, 0.4, 0.5, 0.6, 0.8):
        was, now = _shortfall(old, money, q), _shortfall(new, money, q)
        assert now <= was and now <= 40, (q, was, now)
    assert Population("f").buckets == old  # counts: the very buckets (and cuts) of before
