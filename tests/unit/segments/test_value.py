"""Live value figures: the P(alive) axis and its scheduled early warning, the base's
model fit, CLV in snapshots, and the model kept in a cut-point version."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.rules import load_rules
from segments import Engine, Purchase, Rfm8
from segments.bgnbd import BgNbdParams, expected_purchases, p_alive
from segments.check import build_scheme
from segments.cut_points import CutPoints
from segments.grid import Axis, GridScheme
from segments.model import Columns, CustomerState
from segments.value import (
    ValueModel,
    ValuePolicy,
    alive_due,
    alive_permille,
    figures,
    fit_base,
)

DAY = 86_400_000
UNIT = 10_000
RULES = load_rules("management")
CDNOW_DAYS = BgNbdParams(r=0.2426, alpha=4.4135 * 7, a=0.7929, b=2.4258)
"""The CDNOW fit (Fader, Hardie & Lee 2005) with α converted from weeks to days."""
MODEL = ValueModel(CDNOW_DAYS, customers=2357, log_likelihood=-9582.4, fitted_ms=0)


def alive_scheme(model: ValueModel | None = MODEL) -> GridScheme:
    return build_scheme("alive", RULES.schemes["alive"], None, model)


def buyer(every_days: int, orders: int, amount: int = 100, start: int = 0) -> list[Purchase]:
    return [
        Purchase("c", f"e{i}", (start + i * every_days) * DAY, amount * UNIT, f"o{i}")
        for i in range(orders)
    ]


def test_alive_axis_is_floor_of_p_alive_per_mille() -> None:
    cols = Columns(
        last_ms=np.array([30 * DAY, 30 * DAY, 0]),
        frequency=np.array([4, 4, 1]),
        monetary=np.array([UNIT] * 3),
        first_ms=np.array([0, 0, 0]),
    )
    asof = np.array([40 * DAY, 200 * DAY, 400 * DAY])
    got = alive_permille(MODEL, cols, asof)
    # by hand: 3 repeat orders over 30 days, seen at 40 and 200 days; one order, 400 days
    want = np.floor(p_alive(CDNOW_DAYS, [3, 3, 0], [30, 30, 0], [40, 200, 400]) * 1000)
    assert got.tolist() == want.astype(int).tolist()
    assert got[0] > got[1]
    assert got[2] == 1000  # no repeat order: alive by the model's definition


def test_early_warning_fires_before_the_grid_calls_a_regular_buyer_dormant() -> None:
    """A weekly buyer who stops: at risk by P(alive) within weeks, dormant by the
    2×2×2 grid only after its fixed 90 days; both by the timer, at computed instants."""
    e = Engine([Rfm8(90 * DAY, 2, 100 * UNIT), alive_scheme()])
    states: dict = {}
    e.apply_events(states, buyer(7, 10))  # days 0..63, then nothing
    s = states["c"]
    assert s.segments == {"rfm8": "high_value", "alive": "active"}
    out = e.advance([s], 400 * DAY)
    moves = [(d.scheme, d.to_segment, d.cause) for d in out.transitions]
    assert moves == [
        ("alive", "at_risk", "recency_decay"),
        ("alive", "lost", "recency_decay"),
        ("rfm8", "dormant", "recency_decay"),
    ]
    at_risk, lost, dormant = (d.effective_ms for d in out.transitions)
    assert at_risk < lost < dormant == (63 + 90) * DAY
    assert at_risk - 63 * DAY < 30 * DAY  # within a month of the last order


def test_a_once_a_year_buyer_is_not_at_risk_after_a_few_months() -> None:
    """P(alive) reads the customer's own pace: the same silence is normal for them."""
    e = Engine([alive_scheme()])
    states: dict = {}
    e.apply_events(states, buyer(365, 3))
    e.advance(list(states.values()), (730 + 120) * DAY)
    assert states["c"].segments["alive"] == "active"


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(1, 90), min_size=1, max_size=12),
    st.sampled_from([300, 500, 700, 950]),
    st.floats(0.2, 3.0),
    st.floats(5.0, 200.0),
    st.floats(0.3, 3.0),
    st.floats(0.5, 10.0),
)
def test_alive_due_is_exactly_when_the_axis_drops_below_the_cut(
    gaps: list[int], cut: int, r: float, alpha: float, a: float, b: float
) -> None:
    """Closed form, floats and all: just before the due time the value is at or above
    the cut, at it below; and P(alive) only falls in between (monotone in time)."""
    model = ValueModel(BgNbdParams(r, alpha, a, b), 1, 0.0, 0)
    warn = GridScheme("w", [Axis("p", (cut,), model=model)], {(1,): "lo", (2,): "hi"}, {})
    t, events = 0, [Purchase("c", "e0", 0, UNIT, "o0")]
    for i, g in enumerate(gaps, start=1):
        t += g * DAY + i
        events.append(Purchase("c", f"e{i}", t, UNIT, f"o{i}"))
    e = Engine([warn])
    states: dict = {}
    e.apply_events(states, events)
    s = states["c"]
    cols = Columns.of([s])
    due = int(alive_due(model, (cut,), cols, np.array([s.cursor_ms]))[0])
    if s.segments["w"] == "lo":  # already below at the last order: nothing ahead
        assert due == np.iinfo(np.int64).max
        return
    assert due > s.cursor_ms
    before, at = alive_permille(model, Columns.of([s, s]), np.array([due - 1, due]))
    assert before >= cut > at
    steps = np.linspace(s.last_ms, due, 7).astype(np.int64)
    path = alive_permille(model, Columns.of([s] * 7), steps)
    assert (np.diff(path) <= 0).all()
    assert int(e.next_due([s])[0]) == due
    e.advance([s], due - 1)
    assert s.segments["w"] == "hi"
    e.advance([s], due)
    assert s.segments["w"] == "lo"


def test_the_alive_scheme_ranks_nobody_before_the_first_fit() -> None:
    e = Engine([alive_scheme(None)])
    states: dict = {}
    e.apply_events(states, buyer(7, 5))
    assert states["c"].segments.get("alive", "none") == "none"
    assert int(e.next_due([states["c"]])[0]) == np.iinfo(np.int64).max


def simulated_base(n: int, seed: int, true: BgNbdParams, at_day: int) -> list[CustomerState]:
    """Customers drawn from BG/NBD itself (days), as engine states as of ``at_day``."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(true.r, 1 / true.alpha, n)
    drop = rng.beta(true.a, true.b, n)
    starts = rng.uniform(0, at_day - 30, n)
    e = Engine([Rfm8(90 * DAY, 2, 100 * UNIT)])
    events = []
    for i in range(n):
        t, k = starts[i], 0
        while t < at_day:
            events.append(Purchase(f"c{i}", f"c{i}e{k}", int(t * DAY), 50 * UNIT, f"c{i}o{k}"))
            k += 1
            if k > 1 and rng.random() < drop[i]:
                break
            t += rng.exponential(1 / lam[i])
    states: dict = {}
    e.apply_events(states, events)
    return list(states.values())


def test_fit_base_recovers_the_model_of_a_simulated_base() -> None:
    true = BgNbdParams(r=0.8, alpha=40.0, a=1.2, b=3.0)
    base = simulated_base(4000, 7, true, 400)
    model = fit_base(base, 400 * DAY)
    assert model is not None
    assert model.customers == 4000
    assert model.params.r == pytest.approx(true.r, rel=0.3)
    assert model.params.alpha == pytest.approx(true.alpha, rel=0.4)


def test_fit_base_says_nothing_without_repeat_buyers() -> None:
    e = Engine([Rfm8(90 * DAY, 2, 100 * UNIT)])
    states: dict = {}
    e.apply_events(states, [Purchase(f"c{i}", f"e{i}", i * DAY, UNIT, f"o{i}") for i in range(50)])
    assert fit_base(list(states.values()), 100 * DAY) is None


def test_figures_are_the_clv_formula_with_yearly_margins_from_the_model() -> None:
    policy = ValuePolicy(
        margin_rate=Decimal("0.25"),
        years=5,
        discount_rate=Decimal("0.09"),
        acquisition_cost_units=400 * UNIT,
    )
    cols = Columns(
        last_ms=np.array([60 * DAY]),
        frequency=np.array([4]),
        monetary=np.array([8000 * UNIT]),
        first_ms=np.array([0]),
    )
    asof = np.array([90 * DAY])
    (got,) = figures(MODEL, policy, cols, asof)
    x, tx, big_t = 3, 60.0, 90.0  # by hand: 4 orders over 60 days, seen at day 90
    orders = [
        float(expected_purchases(CDNOW_DAYS, 365 * t, x, tx, big_t))
        - float(expected_purchases(CDNOW_DAYS, 365 * (t - 1), x, tx, big_t))
        for t in range(1, 6)
    ]
    # m0 = 25 % of the 8000 spent so far = 2000; A = 400; m_t = 25 % of the 2000
    # average order × the orders expected in year t, discounted at 9 %
    future = sum(500 * n / 1.09**t for t, n in enumerate(orders, start=1))
    assert got["clv"] == str(Decimal(2000 - 400 + future).quantize(Decimal("0.01")))
    assert Decimal(got["clv"]) > 1600
    assert got["p_alive"] == round(float(p_alive(CDNOW_DAYS, x, tx, big_t)), 4)
    assert got["expected_orders_1y"] == round(orders[0], 3)


def test_cut_points_keep_the_model_with_its_unit() -> None:
    cuts = CutPoints(3, 5 * DAY, {"pyramid": {"m": (10, 20)}}, 100, MODEL)
    back = CutPoints.from_json(cuts.to_json())
    assert back == cuts
    doc: dict[str, Any] = cuts.to_json()  # a JSON document: its values are untyped
    assert doc["model"]["unit"] == "day"
    assert CutPoints.from_json(CutPoints(1, 0).to_json()).model is None
    doc["model"] = {**doc["model"], "unit": "week"}
    with pytest.raises(ValueError, match="unit"):
        CutPoints.from_json(doc)


def test_a_limit_fit_serves_until_a_proper_one_but_never_replaces_one() -> None:
    """Regular buyers, none of whom has stopped: no sign of dropout, so the fit runs to
    the search bound. It still predicts, so it is used while nothing better exists."""
    e = Engine([Rfm8(90 * DAY, 2, 100 * UNIT)])
    states: dict = {}
    events = [
        Purchase(f"c{i}", f"c{i}e{k}", (i + 7 * k) * DAY, UNIT, f"c{i}o{k}")
        for i in range(60)
        for k in range(5)
    ]
    e.apply_events(states, events)
    limit = fit_base(list(states.values()), 100 * DAY)
    assert limit is not None and not limit.converged
    assert ValueModel.from_json(limit.to_json()) == limit
    assert fit_base(list(states.values()), 100 * DAY, MODEL) is MODEL
    unproven = ValueModel(CDNOW_DAYS, 10, 0.0, 0, converged=False)
    assert fit_base(list(states.values()), 100 * DAY, unproven) not in (None, unproven)


def test_time_axes_with_hysteresis_are_scheduled_where_the_margin_lets_go() -> None:
    """With a margin, a customer leaves the band only past cut × (1 ± margin): that
    instant is a due time too, or the warning would never fire by the timer."""
    for axis, cut in (("p", 700), ("c", 150)):
        # P(alive) falls with time (band 2 is fine), cadence rises (band 1 is fine)
        cells = {(1,): "late", (2,): "ok"} if axis == "p" else {(1,): "ok", (2,): "late"}
        model = MODEL if axis == "p" else None
        warn = GridScheme("w", [Axis(axis, (cut,), model=model)], cells, {}, hysteresis=0.1)
        e = Engine([warn])
        states: dict = {}
        e.apply_events(states, buyer(7, 10))  # days 0..63
        s = states["c"]
        assert s.segments["w"] == "ok"
        out = e.advance([s], 2000 * DAY)
        assert [d.to_segment for d in out.transitions] == ["late"], axis
        at = out.transitions[0].effective_ms
        if axis == "p":
            before, now = alive_permille(MODEL, Columns.of([s, s]), np.array([at - 1, at]))
            assert before >= math.ceil(cut * 0.9) > now
        else:
            before, now = ((t - s.last_ms) * 900 // (63 * DAY) for t in (at - 1, at))
            assert before < math.ceil(cut * 1.1) <= now


def test_a_refund_or_an_order_over_two_days_is_still_one_order_to_the_model() -> None:
    """x = 0 forces t_x = 0 (BG/NBD refuses anything else): the lines of one order on
    two days, or a refunded order then a new one, must not break classification."""
    from segments import Refund

    e = Engine([Rfm8(90 * DAY, 2, 100 * UNIT), alive_scheme()])
    states: dict = {}
    e.apply_events(
        states,
        [
            Purchase("a", "a1", 0, 50 * UNIT, "o1"),
            Purchase("a", "a2", 3 * DAY, 50 * UNIT, "o1"),  # same order, a later line
            Purchase("b", "b1", 0, 50 * UNIT, "p1"),
            Refund("b", "b2", 1 * DAY, 50 * UNIT, "p1"),
            Purchase("b", "b3", 5 * DAY, 50 * UNIT, "p2"),
        ],
    )
    assert states["a"].frequency == states["b"].frequency == 1
    assert states["a"].segments["alive"] == states["b"].segments["alive"] == "active"
    (fig,) = figures(MODEL, ValuePolicy(), Columns.of([states["a"]]), np.array([10 * DAY]))
    assert fig["p_alive"] == 1.0
    e.advance(list(states.values()), 400 * DAY)
    assert fit_base(list(states.values()) * 30, 400 * DAY) is None  # no repeat buyer


def test_a_value_figures_scheme_moved_by_time_is_not_a_recalibration() -> None:
    """A new version shows in such a scheme's snapshots, but cannot move it: a cadence
    warning after a refit is still ``recency_decay``."""
    spec = RULES.schemes["churn_warning"]
    assert spec.value_figures
    old = Engine([build_scheme("churn_warning", spec)])
    old.cut_version = 1
    states: dict = {}
    old.apply_events(states, buyer(10, 5))
    new = Engine([build_scheme("churn_warning", spec, None, MODEL)])
    new.cut_version = 2
    out = new.advance(list(states.values()), 200 * DAY)
    assert [(d.to_segment, d.cause) for d in out.transitions] == [("at_risk", "recency_decay")]
