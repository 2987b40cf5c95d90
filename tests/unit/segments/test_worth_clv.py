"""CLV per segment and customer equity, kept by deltas of each customer's last CLV, equal
a recount of the stored last CLVs after purchases, full refunds, decays and refits."""

from __future__ import annotations

from typing import TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from segments.bgnbd import BgNbdParams
from segments.model import CustomerState, Purchase, Refund
from segments.value import ValueModel, ValuePolicy
from segments.worth import Equity, WorthDeltas, clv_cents, deltas, holdings, recount
from tests.unit.segments.test_worth import DAY, UNIT, _into, engine

K = TypeVar("K")
POLICY = ValuePolicy()
MODELS = [
    ValueModel(BgNbdParams(r=0.2426, alpha=30.9, a=0.7929, b=2.4258), 2357, -9582.4, 0),
    ValueModel(BgNbdParams(r=0.8, alpha=12.0, a=0.3, b=4.0), 500, -1000.0, 0),
]
"""Two fits: a refit swaps the model and re-evaluates everyone (the recalibration sweep)."""


def add(total: WorthDeltas, d: WorthDeltas) -> None:
    _into(total.clv, d.clv)
    _into(total.valued, d.valued)
    total.equity = Equity(total.equity.clv + d.equity.clv, total.equity.customers + d.equity[1])


def expected(states: list[CustomerState]) -> WorthDeltas:
    """The CLV sums recounted from the stored last CLVs, from nothing."""
    got = recount(states)
    manual = WorthDeltas()
    for s in states:
        if s.clv is None:
            continue
        for key in ((k, v) for k, v in s.segments.items() if v != "none"):
            _into(manual.clv, {key: s.clv})
            _into(manual.valued, {key: 1})
    manual.equity = Equity(
        sum(s.clv for s in states if s.clv is not None),
        sum(s.clv is not None for s in states),
    )
    assert (got.clv, got.valued, got.equity) == (manual.clv, manual.valued, manual.equity)
    return got


def evaluate(states: list[CustomerState], model: ValueModel | None) -> None:
    """What the processor does after each change: the CLV as of this evaluation."""
    cents = clv_cents(model, POLICY, states) if model else [None] * len(states)
    for s, c in zip(states, cents, strict=True):
        s.clv = c


# (customer, day, amount, full refund?, refit before this step?)
steps = st.lists(
    st.tuples(
        st.integers(0, 4), st.integers(0, 300), st.integers(1, 900), st.booleans(), st.booleans()
    ),
    min_size=1,
    max_size=20,
)


@settings(max_examples=60, deadline=None)
@given(steps, st.integers(1, 4))
def test_clv_sums_by_deltas_equal_a_recount_of_the_last_clvs(
    xs: list[tuple[int, int, int, bool, bool]], batch: int
) -> None:
    e = engine()
    states: dict[str, CustomerState] = {}
    running = WorthDeltas()
    model: ValueModel | None = None
    fits = 0
    events: list[tuple[Purchase | Refund, bool]] = []
    for i, (c, day, amount, refund, refit) in enumerate(xs):
        events.append((Purchase(f"c{c}", f"p{i}", day * DAY, amount * UNIT, f"o{i}"), refit))
        if refund:  # the whole order back: a one-order customer leaves the base
            events.append(
                (Refund(f"c{c}", f"r{i}", (day + 1) * DAY, amount * UNIT, f"o{i}", "x"), False)
            )
    for start in range(0, len(events), batch):
        chunk = events[start : start + batch]
        if any(refit for _, refit in chunk):  # a refit: everyone through the sweep
            model = MODELS[fits % 2]
            fits += 1
            everyone = list(states.values())
            before = holdings(everyone)
            evaluate(everyone, model)
            add(running, deltas(before, holdings(everyone)))
        evs = [ev for ev, _ in chunk]
        touched = list(
            {
                ev.customer_id: states.setdefault(ev.customer_id, CustomerState(ev.customer_id))
                for ev in evs
            }.values()
        )
        before = holdings(touched)
        e.apply_events(states, evs)
        evaluate(touched, model)
        add(running, deltas(before, holdings(touched)))
        want = expected(list(states.values()))
        assert (running.clv, running.valued, running.equity) == (want.clv, want.valued, want.equity)
    everyone = list(states.values())
    before = holdings(everyone)
    e.advance(everyone, 400 * DAY)  # a decay step re-evaluates: the CLV moves with time
    evaluate(everyone, model)
    add(running, deltas(before, holdings(everyone)))
    want = expected(everyone)
    assert (running.clv, running.valued, running.equity) == (want.clv, want.valued, want.equity)
    if model is not None and any(s.frequency for s in everyone):
        assert running.equity.customers == sum(s.frequency > 0 for s in everyone)


def test_a_full_refund_takes_the_clv_out_and_no_model_keeps_none() -> None:
    e = engine()
    states: dict[str, CustomerState] = {}
    s = states.setdefault("c", CustomerState("c"))
    before = holdings([s])
    e.apply_events(states, [Purchase("c", "p", 10 * DAY, 800 * UNIT, "o")])
    evaluate([s], MODELS[0])
    d = deltas(before, holdings([s]))
    assert s.clv is not None and d.equity == Equity(s.clv, 1)
    assert set(d.clv.values()) == {s.clv}
    before = holdings([s])
    e.apply_events(states, [Refund("c", "r", 11 * DAY, 800 * UNIT, "o", "x")])
    evaluate([s], MODELS[0])
    out = deltas(before, holdings([s]))
    assert s.clv is None and out.equity == Equity(-d.equity.clv, -1)
    assert out.clv == {k: -v for k, v in d.clv.items()}
