"""Cut points from summaries: the populations a rules file needs, and their thresholds."""

from __future__ import annotations

import numpy as np

from schemas.rules import load_rules
from segments import CustomerState, sketch
from segments.check import build_scheme
from segments.model import Columns
from segments.quantiles import CutPoints, Populations

DAY = 86_400_000
UNIT = 10_000
RULES = load_rules("rfm")  # the RFM file: its populations are f, m and r


def schemes(thresholds=None):
    return [build_scheme(n, s, (thresholds or {}).get(n)) for n, s in RULES.schemes.items()]


def test_the_shipped_rfm_rules_summarise_f_m_and_last_purchase() -> None:
    assert [p.name for p in Populations(schemes()).items] == ["f", "m", "r"]
    assert not Populations(schemes()[:2])  # rfm8 and rfm27 have fixed cuts only


def _customers(monetary: np.ndarray, last: np.ndarray, freq: np.ndarray) -> list[CustomerState]:
    return [
        CustomerState(f"c{i}", int(f), int(m), 0, int(t), int(t))
        for i, (m, t, f) in enumerate(zip(monetary, last, freq, strict=True))
    ]


def test_pyramid_from_summaries_of_a_large_population_lands_on_1_20_50_percent() -> None:
    rng = np.random.default_rng(11)
    n = 200_000
    monetary = np.round(np.exp(rng.normal(np.log(300), 1.2, n)) * UNIT).astype(np.int64)
    last = rng.integers(0, 365 * DAY, n)
    freq = rng.geometric(0.35, n)
    states = _customers(monetary, last, freq)
    pops = Populations(schemes())
    absent = {k: (v[0], np.zeros(n, bool)) for k, v in pops.snapshot(states).items()}
    summaries = pops.deltas(absent, pops.snapshot(states))  # everyone arrives at once
    cuts = pops.cut_points(schemes(), summaries, 365 * DAY, version=3, population=n)
    assert CutPoints.from_json(cuts.to_json()) == cuts
    pyramid = build_scheme("pyramid", RULES.schemes["pyramid"], cuts.thresholds["pyramid"])
    keys = pyramid.classify(Columns.of(states), np.full(n, 365 * DAY))
    share = {k: float((keys == k).mean()) for k in ("vip", "major", "ordinary", "small")}
    # never over-filled above a cut; under-filled by at most the customers of the one
    # summary bucket (values within 2 %) holding the quantile
    assert 0.009 <= share["vip"] <= 0.01
    assert 0.19 <= share["vip"] + share["major"] <= 0.20
    assert 0.50 <= share["small"] <= 0.51
    # R quintiles: the most recent fifth (to the day) in the top band of rfm125
    rfm125 = build_scheme("rfm125", RULES.schemes["rfm125"], cuts.thresholds["rfm125"])
    r = rfm125.scores(Columns.of(states), np.full(n, 365 * DAY))["r"]
    assert abs(float((r == 5).mean()) - 0.2) < 0.01
    assert abs(float((r == 1).mean()) - 0.2) < 0.01


def test_no_thresholds_while_a_population_is_empty() -> None:
    cuts = Populations(schemes()).cut_points(schemes(), {}, 0, version=1)
    assert cuts.thresholds == {}
    assert sketch.size({}) == 0
