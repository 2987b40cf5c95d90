"""The 2×2×2 grid: every segment, every boundary."""

from __future__ import annotations

import numpy as np
import pytest

from segments import RFM8_LABELS, Columns, Rfm8

DAY = 86_400_000
UNIT = 10_000  # fixed-point units per currency unit
SCHEME = Rfm8(recency_ms=90 * DAY, frequency_cut=3, monetary_cut_units=1000 * UNIT)


def classify(last_ms: int, freq: int, money: int, asof: int) -> str:
    cols = Columns(np.array([last_ms]), np.array([freq]), np.array([money * UNIT]))
    return str(SCHEME.classify(cols, np.array([asof]))[0])


@pytest.mark.parametrize(
    ("r_high", "f_high", "m_high", "key", "label"),
    [
        (True, True, True, "high_value", "高价值客户"),
        (True, False, True, "develop", "深耕客户"),
        (False, True, True, "dormant", "休眠客户"),
        (False, False, True, "churning", "流失客户"),
        (True, True, False, "potential", "潜力客户"),
        (True, False, False, "new", "新客户"),
        (False, True, False, "maintain", "维持客户"),
        (False, False, False, "drifting", "放任自流客户"),
    ],
)
def test_each_of_the_eight_segments(
    r_high: bool, f_high: bool, m_high: bool, key: str, label: str
) -> None:
    asof = 1000 * DAY
    last = asof - (10 * DAY if r_high else 200 * DAY)
    assert classify(last, 5 if f_high else 1, 5000 if m_high else 10, asof) == key
    assert RFM8_LABELS[key] == label
    assert SCHEME.label(key) == label


def test_recency_boundary_is_exclusive_at_exactly_the_duration() -> None:
    last = 500 * DAY
    assert classify(last, 5, 5000, last + 90 * DAY - 1) == "high_value"
    assert classify(last, 5, 5000, last + 90 * DAY) == "dormant"
    assert classify(last, 5, 5000, last + 90 * DAY + 1) == "dormant"


def test_frequency_boundary_is_inclusive_at_the_cut_point() -> None:
    assert classify(0, 2, 5000, DAY) == "develop"
    assert classify(0, 3, 5000, DAY) == "high_value"


def test_monetary_boundary_is_inclusive_at_the_cut_point() -> None:
    cols = Columns(np.array([0, 0]), np.array([5, 5]), np.array([1000 * UNIT - 1, 1000 * UNIT]))
    assert list(SCHEME.classify(cols, np.array([DAY, DAY]))) == ["potential", "high_value"]


def test_vectorised_over_a_batch_matches_one_by_one() -> None:
    n = 500
    rng = np.random.default_rng(1)
    cols = Columns(
        rng.integers(0, 400 * DAY, n), rng.integers(1, 6, n), rng.integers(1, 3000, n) * UNIT
    )
    keys = SCHEME.classify(cols, np.full(n, 400 * DAY))
    for i in range(n):
        money = int(cols.monetary[i]) // UNIT
        assert keys[i] == classify(int(cols.last_ms[i]), int(cols.frequency[i]), money, 400 * DAY)


def test_invalid_cut_points_rejected() -> None:
    with pytest.raises(ValueError, match="positive"):
        Rfm8(recency_ms=0, frequency_cut=1, monetary_cut_units=1)
