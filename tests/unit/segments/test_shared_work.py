"""Work shared between schemes gives each scheme's own answer (issue #20): an axis
computed once per batch for every scheme reading it, and one due-time computation per
timed axis for every scheme, equal what each scheme computes alone."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.rules import load_rules
from segments.bgnbd import BgNbdParams
from segments.check import build_scheme
from segments.grid import Axis, GridScheme, merged_time_edges, timed_due
from segments.model import Columns, CustomerState
from segments.value import ValueModel

DAY = 86_400_000
MODEL = ValueModel(BgNbdParams(r=0.2426, alpha=30.9, a=0.7929, b=2.4258), 2357, -9582.4, 0)
RULES = load_rules("all")
# every shipped scheme, quantile axes given made-up cut points so that all of them rank
CUTS = {"r": (30 * DAY, 90 * DAY, 200 * DAY, 300 * DAY), "f": (2, 3, 5, 8)}
CUTS |= {"m": (10**6, 5 * 10**6, 2 * 10**7), "a": (10**6,)}


def _schemes() -> list[GridScheme]:
    out = []
    for name, spec in RULES.schemes.items():
        quantile = {a: CUTS[a] for a in "rfma" if (x := getattr(spec.axes, a)) and x.quantiles}
        th = {a: t[: len(getattr(spec.axes, a).quantiles)] for a, t in quantile.items()}
        out.append(build_scheme(name, spec, th or None, MODEL))
    return out


def _window(days: int | None) -> GridScheme:
    """M over a rolling window (or lifetime): the same axis name, a different value."""
    axes = [Axis("m", (3 * 10**6,), window_ms=days * DAY if days else None)]
    return GridScheme(f"m{days}", axes, {(1,): "low", (2,): "high"}, {"low": "L", "high": "H"})


SCHEMES = [*_schemes(), _window(None), _window(90), _window(365)]

_customer = st.tuples(
    st.integers(1, 12),  # orders
    st.integers(1, 10**8),  # net spend
    st.integers(0, 300),  # first purchase day
    st.integers(0, 200),  # days to the last
    st.integers(0, 400),  # days from the last to the cursor
    st.dictionaries(
        st.integers(0, 500), st.tuples(st.integers(0, 3), st.integers(0, 10**7)), max_size=6
    ),
)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(_customer, min_size=1, max_size=10))
def test_shared_axes_and_merged_due_times_equal_each_scheme_alone(rows: list) -> None:
    states = [
        CustomerState(
            f"c{i}",
            frequency=f,
            monetary=m,
            first_ms=first * DAY,
            last_ms=(first + span) * DAY,
            cursor_ms=(first + span + wait) * DAY,
            days={d: list(v) for d, v in days.items()},
        )
        for i, (f, m, first, span, wait, days) in enumerate(rows)
    ]
    asof = np.array([s.cursor_ms for s in states], dtype=np.int64)
    shared = Columns.of(states)
    for scheme in SCHEMES:  # one Columns for all, as the engine does
        alone = Columns.of(states)
        assert scheme.classify(shared, asof).tolist() == scheme.classify(alone, asof).tolist()
        got = {a: v.tolist() for a, v in scheme.scores(shared, asof).items()}
        assert got == {a: v.tolist() for a, v in scheme.scores(alone, asof).items()}
    assert shared.memo  # the columns were shared (else this tests nothing)
    each = [d for s in SCHEMES if (d := s.due_ms(Columns.of(states), asof)) is not None]
    merged = timed_due(merged_time_edges(SCHEMES), Columns.of(states), asof)
    assert merged is not None
    assert merged.tolist() == np.minimum.reduce(each).tolist()
