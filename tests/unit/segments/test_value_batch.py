"""A batch's value figures equal each customer's figures computed alone (issue #20: the
batch computes each distinct history once, which must not change a single figure)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from segments.bgnbd import BgNbdParams
from segments.model import Columns
from segments.value import ValueModel, ValuePolicy, alive_due, figures

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


_history = st.tuples(
    st.integers(1, 15),  # orders
    st.integers(0, 200),  # first purchase day
    st.integers(0, 300),  # days to the last
    st.integers(0, 30),  # cursor: days after the last (before the crossings, mostly)
)


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(_history, min_size=1, max_size=8), later=st.integers(0, 20))
def test_remembered_alive_crossings_equal_a_fresh_bisection(
    rows: list[tuple[int, int, int, int]], later: int
) -> None:
    """The model remembers each history's crossing; asked again (the next due step, a
    later cursor), it answers what a model that never saw the history finds."""
    f, first, span, wait = (np.array(c, dtype=np.int64) for c in zip(*rows, strict=True))
    first, last = first * DAY, (first + span) * DAY
    cols = Columns(last, f, f * 10**6, (), first)
    cuts = (300, 700)
    remembering = dataclasses.replace(MODEL, crossings={})
    ahead = False
    for cursor in (last + wait * DAY, last + (wait + later) * DAY + 7):
        # the reference never reuses anything: one customer, one cut, a new model each
        want = np.array(
            [
                min(
                    int(
                        alive_due(
                            dataclasses.replace(MODEL, crossings={}),
                            (cut,),
                            Columns(
                                last[i : i + 1], f[i : i + 1], f[i : i + 1], (), first[i : i + 1]
                            ),
                            cursor[i : i + 1],
                        )[0]
                    )
                    for cut in cuts
                )
                for i in range(len(rows))
            ]
        )
        assert alive_due(remembering, cuts, cols, cursor).tolist() == want.tolist()
        ahead = ahead or bool((want != np.iinfo(np.int64).max).any())
    assert bool(remembering.crossings) == ahead  # a crossing ahead is remembered
