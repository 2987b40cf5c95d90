"""Eq. 10 of the BG/NBD paper around its removable singularities (a = 1, and a + b = 1
for x = 0), where ``segments.bgnbd_predict`` bridges it from both sides: the bridge must
not carry more rounding than the values it bridges (the quadrature check of the values
themselves is in test_bgnbd)."""

from __future__ import annotations

import numpy as np
import pytest

from segments import bgnbd
from segments.bgnbd import BgNbdParams


@pytest.mark.parametrize(
    "params",
    [
        BgNbdParams(r=10.0, alpha=1.0, a=1.0, b=1.0),  # a = 1 (hypothesis found it)
        BgNbdParams(r=2.0, alpha=0.5, a=0.25, b=0.75),  # a + b = 1
        BgNbdParams(r=3.0, alpha=2.0, a=1.0 + 1e-7, b=4.0),  # just off a = 1
    ],
)
@pytest.mark.parametrize("history", [(0, 0.0, 0.1), (0, 0.0, 50.0), (40, 30.0, 38.0)])
def test_expected_purchases_at_a_removable_singularity_never_fall_below_zero(
    params: BgNbdParams, history: tuple[int, float, float]
) -> None:
    """Around a = 1 (and a + b = 1) eq. 10 is interpolated; evaluated at a = 1 ± 1e-6 the
    points carried ~2e-9 of rounding, so tiny horizons came out below zero (-1.9e-9 for
    the first params) and falling as the horizon grew."""
    x, tx, big_t = history
    t = np.array([0.0, 1e-300, 1e-12, 1e-9, 1e-7, 1e-5, 1e-3, 0.1, 1.0, 500.0])
    got = bgnbd.expected_purchases(params, t, x, tx, big_t)
    assert (got >= 0).all(), got
    assert (np.diff(got) >= -1e-12 * np.maximum(1, got[1:])).all(), got
