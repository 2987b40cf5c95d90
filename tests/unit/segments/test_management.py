"""Customer-management schemes (management_rules.toml) and the axes they use: average
order value, tenure, cadence (time-driven, per customer) and growth (windowed)."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.rules import load_rules
from segments import Engine, Purchase, Rfm8
from segments.axes import values
from segments.cells import cells_of
from segments.check import build_scheme, check_rules
from segments.model import Columns

DAY = 86_400_000
UNIT = 10_000
RULES = load_rules("management")


def scheme(name: str, thresholds: dict | None = None):
    return build_scheme(name, RULES.schemes[name], thresholds)


def test_management_rules_are_complete_maps() -> None:
    assert check_rules(RULES) == []
    for name, spec in RULES.schemes.items():
        s = scheme(name, {a.name: (1,) for a in scheme(name).axes if a.quantiles is not None})
        every = set(itertools.product(*(range(1, n + 1) for n in s.bands)))
        owners: dict = {}
        axes = [a.name for a in s.axes]
        for key, seg in spec.segments.items():
            for pattern in seg.cells:
                for cell in cells_of(pattern, axes, s.bands):
                    owners.setdefault(cell, []).append(key)
        assert set(owners) == every, name
        assert all(len(v) == 1 for v in owners.values()), name
        assert {k for v in owners.values() for k in v} == set(spec.segments), name


def buyer(every_days: int, orders: int, amount: int = 100, start: int = 0) -> list[Purchase]:
    return [
        Purchase("c", f"e{i}", (start + i * every_days) * DAY, amount * UNIT, f"o{i}")
        for i in range(orders)
    ]


def test_churn_warning_fires_before_the_grid_calls_a_regular_buyer_dormant() -> None:
    e = Engine([Rfm8(90 * DAY, 2, 100 * UNIT), scheme("churn_warning")])
    states: dict = {}
    e.apply_events(states, buyer(10, 5))  # days 0, 10, 20, 30, 40, then nothing
    s = states["c"]
    assert s.segments == {"rfm8": "high_value", "churn_warning": "on_track"}
    assert int(e.next_due([s])[0]) == 55 * DAY  # last + 150 % of the 10-day cadence
    out = e.advance([s], 200 * DAY)
    moves = [(d.scheme, d.to_segment, d.cause, d.effective_ms // DAY) for d in out.transitions]
    assert moves == [
        ("churn_warning", "at_risk", "recency_decay", 55),
        ("rfm8", "dormant", "recency_decay", 130),
    ]


def test_one_purchase_has_no_cadence_and_is_never_at_risk_by_it() -> None:
    e = Engine([scheme("churn_warning")])
    states: dict = {}
    e.apply_events(states, buyer(10, 1))
    assert states["c"].segments["churn_warning"] == "on_track"
    assert int(e.next_due([states["c"]])[0]) == np.iinfo(np.int64).max


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 60), min_size=2, max_size=8), st.sampled_from([101, 150, 300]))
def test_cadence_due_time_is_exactly_when_the_band_changes(gaps, cut) -> None:
    """Just before the due time the customer is on track; at it, at risk."""
    from segments.grid import Axis, GridScheme

    warn = GridScheme("w", [Axis("c", (cut,))], {(1,): "ok", (2,): "late"}, {"ok": "", "late": ""})
    e = Engine([warn])
    states: dict = {}
    t = 0
    events = []
    for i, g in enumerate(gaps):
        t += g * DAY + i
        events.append(Purchase("c", f"e{i}", t, UNIT, f"o{i}"))
    e.apply_events(states, events)
    s = states["c"]
    due = int(e.next_due([s])[0])
    cols = Columns.of([s])
    before = values("c", None, cols, np.array([due - 1]))[0]
    at = values("c", None, cols, np.array([due]))[0]
    assert before < cut <= at
    assert s.segments["w"] == "ok"
    e.advance([s], due - 1)
    assert s.segments["w"] == "ok"
    e.advance([s], due)
    assert s.segments["w"] == "late"


def test_lifecycle_moves_through_its_stages_in_order() -> None:
    """Weekly buyer: 90 days of trial, spend rising, then a plateau, then they stop."""
    e = Engine([scheme("lifecycle")])
    states: dict = {}
    stages = []
    events = [Purchase("c", f"a{i}", i * 7 * DAY, 10 * UNIT, f"a{i}") for i in range(13)]
    events += [Purchase("c", f"b{i}", (91 + i * 7) * DAY, 30 * UNIT, f"b{i}") for i in range(30)]
    for ev in events:
        out = e.apply_events(states, [ev])
        e.advance(list(states.values()), ev.occurred_ms)
        stages += [d.to_segment for d in out.transitions]
    out = e.advance(list(states.values()), 500 * DAY)  # they stopped buying
    stages += [d.to_segment for d in out.transitions]
    seen = [k for k, _ in itertools.groupby(stages)]
    assert seen == ["exploration", "formation", "stability", "decline"], stages


def test_purchase_pattern_loyalty_and_value_matrix_read_their_axes() -> None:
    pattern = scheme("purchase_pattern", {"a": (200 * UNIT + 1,)})
    loyalty = scheme("loyalty", {"a": (200 * UNIT + 1,)})
    matrix = scheme("value_matrix", {"m": (500 * UNIT + 1,)})
    e = Engine([pattern, loyalty, matrix])
    states: dict = {}
    e.apply_events(states, buyer(200, 3, amount=500))  # 3 big orders over 400 days
    assert states["c"].segments == {
        "purchase_pattern": "premium",  # 3 orders of 500
        "loyalty": "butterflies",  # 500 a visit, but only 2 visits in the last 365 days
        "value_matrix": "platinum",  # 1000 in the last year; last 180 days = the 180 before
    }
    one = {}
    e.apply_events(one, [Purchase("d", "x", 0, 50 * UNIT, "x")])
    assert one["d"].segments == {
        "purchase_pattern": "uncertain",
        "loyalty": "strangers",
        "value_matrix": "iron",  # low value, but all of it new
    }
