"""A batch's value figures equal each customer's figures computed alone (issue #20: the
batch computes each distinct history once, which must not change a single figure)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from segments.bgnbd import BgNbdParams
from segments.model import Columns
from segments.value import ValueModel, ValuePolicy, figures

DAY = 86_400_000
MODEL = ValueModel(BgNbdParams(r=0.2426, alpha=30.9, a=0.7929, b=2.4258), 2357, -9582.4, 0)
POLICY = ValuePolicy(Decimal("0.3"), 3, Decimal("0.09"), 1_000_000)

_row = st.tuples(
    st.integers(0, 12),  # frequency
    st.integers(0, 10**10),  # monetary units
    st.integers(0, 300),  # first purchase day
    st.integers(0, 300),  # days to the last
    st.integers(0, 400),  # days to the as-of
)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(_row, min_size=1, max_size=6), picks=st.lists(st.integers(0, 5), max_size=14))
def test_figures_of_a_batch_with_repeats_equal_each_row_alone(
    rows: list[tuple[int, int, int, int, int]], picks: list[int]
) -> None:
    batch = rows + [rows[i % len(rows)] for i in picks]  # the same history several times
    f, m, first, span, ahead = (np.array(c, dtype=np.int64) for c in zip(*batch, strict=True))
    last = (first + span) * DAY
    cols = Columns(last, f, m, (), first * DAY)
    alone = [
        figures(
            MODEL,
            POLICY,
            Columns(last[i : i + 1], f[i : i + 1], m[i : i + 1], (), first[i : i + 1] * DAY),
            last[i : i + 1] + ahead[i] * DAY,
        )[0]
        for i in range(len(batch))
    ]
    assert figures(MODEL, POLICY, cols, last + ahead * DAY) == alone
