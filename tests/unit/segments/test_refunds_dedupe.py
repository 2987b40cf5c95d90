"""Effectively-once in the engine: duplicate event ids, refunds, held refunds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from segments import NEVER, NONE, Engine, Policy, Purchase, Refund, Rfm8
from tests.unit.segments.fixtures import Bands

DAY = 86_400_000
UNIT = 10_000


def engine(**policy: int) -> Engine:
    return Engine([Rfm8(90 * DAY, 2, 1000 * UNIT)], Policy(**policy))


def buy(c: str, n: int, day: float, amount: int, order: str | None = None) -> Purchase:
    return Purchase(c, f"p{n}", int(day * DAY), amount * UNIT, order or f"o{n}")


def refund(c: str, n: int, day: float, amount: int, order: str) -> Refund:
    return Refund(c, f"r{n}", int(day * DAY), amount * UNIT, order, ref=f"ref-r{n}")


def test_a_resent_event_id_changes_nothing_in_one_batch_or_across_batches() -> None:
    e, states = engine(), {}
    out = e.apply_events(states, [buy("c", 1, 0, 600), buy("c", 1, 0, 600)])
    assert out.duplicates == 1
    out = e.apply_events(states, [buy("c", 1, 3, 600)])  # resent later, new offset
    assert out.duplicates == 1 and out.transitions == []
    assert (states["c"].frequency, states["c"].monetary) == (1, 600 * UNIT)


def test_the_dedupe_window_is_bounded() -> None:
    e, states = engine(dedupe_ms=30 * DAY), {}
    e.apply_events(states, [buy("c", 1, 0, 10)] + [buy("c", n, n, 10) for n in range(2, 60)])
    assert len(states["c"].seen) <= 31  # only the last 30 days of ids are kept
    assert e.apply_events(states, [buy("c", 55, 70, 10)]).duplicates == 1


def test_refund_retracts_money_and_moves_the_customer_down() -> None:
    e, states = engine(), {}
    e.apply_events(states, [buy("c", 1, 0, 700), buy("c", 2, 1, 700)])
    assert states["c"].segments["rfm8"] == "high_value"
    out = e.apply_events(states, [refund("c", 1, 2, 500, "o2")])
    s = states["c"]
    assert (s.frequency, s.monetary) == (2, 900 * UNIT)  # partial refund: still 2 orders
    assert [(t.from_segment, t.to_segment, t.cause, t.event_id) for t in out.transitions] == [
        ("high_value", "potential", "refund", "r1")
    ]
    e.apply_events(states, [refund("c", 2, 3, 200, "o2")])  # the rest of o2
    assert (s.frequency, s.monetary) == (1, 700 * UNIT)


def test_refund_of_the_only_order_leaves_no_segment() -> None:
    e, states = engine(), {}
    e.apply_events(states, [buy("c", 1, 0, 50)])
    out = e.apply_events(states, [refund("c", 1, 1, 50, "o1")])
    assert [(t.from_segment, t.to_segment, t.cause) for t in out.transitions] == [
        ("new", "none", "refund")
    ]
    assert e.next_due([states["c"]]).tolist() == [NEVER]
    again = e.apply_events(states, [buy("c", 2, 5, 60)]).transitions
    assert [(t.from_segment, t.to_segment, t.cause) for t in again] == [
        ("none", "new", "first_purchase")
    ]


def test_refund_larger_than_the_order_is_rejected_and_changes_nothing() -> None:
    e, states = engine(), {}
    e.apply_events(states, [buy("c", 1, 0, 50)])
    out = e.apply_events(states, [refund("c", 1, 1, 80, "o1")])
    assert [(r.event_id, r.ref, r.error_class) for r in out.rejected] == [
        ("r1", "ref-r1", "RefundExceedsOrder")
    ]
    assert "exceeds" in out.rejected[0].message
    assert states["c"].monetary == 50 * UNIT


def test_refund_before_its_purchase_is_held_then_applied() -> None:
    e, states = engine(refund_hold_ms=7 * DAY), {}
    out = e.apply_events(states, [refund("c", 1, 0, 30, "o1")])
    assert out.rejected == [] and len(states["c"].held) == 1
    assert e.next_due([states["c"]]).tolist() == [7 * DAY]
    e.apply_events(states, [buy("c", 1, 1, 100)])
    s = states["c"]
    assert (s.frequency, s.monetary, s.held) == (1, 70 * UNIT, [])


def test_a_held_refund_whose_purchase_never_comes_is_rejected_at_its_due_time() -> None:
    e, states = engine(refund_hold_ms=7 * DAY), {}
    e.apply_events(states, [buy("c", 0, 0, 100, order="other"), refund("c", 1, 1, 30, "o9")])
    assert e.advance([states["c"]], 8 * DAY - 1).rejected == []
    out = e.advance([states["c"]], 8 * DAY)
    assert [(r.event_id, r.error_class) for r in out.rejected] == [("r1", "RefundUnknownOrder")]
    assert states["c"].held == [] and states["c"].monetary == 100 * UNIT


# ---------------------------------------------------------------- property


@st.composite
def histories(draw: st.DrawFn) -> tuple[list, list]:
    """(deduplicated time-ordered history, the same with duplicates and shuffled)."""
    n = draw(st.integers(1, 25))
    events = []
    for i in range(n):
        c = f"c{draw(st.integers(0, 3))}"
        day = draw(st.integers(0, 300))
        amount = draw(st.integers(1, 900))
        events.append(Purchase(c, f"p{i}", day * DAY, amount * UNIT, f"o{i}"))
        left = amount
        for j in range(draw(st.integers(0, 2))):
            if left == 0:
                break
            part = draw(st.integers(1, left))
            left -= part
            later = day + draw(st.integers(0, 60))
            events.append(Refund(c, f"r{i}.{j}", later * DAY, part * UNIT, f"o{i}", "ref"))
    ordered = sorted(events, key=lambda e: (e.occurred_ms, isinstance(e, Refund)))
    noisy = events + [events[k] for k in draw(st.lists(st.integers(0, len(events) - 1)))]
    shuffled = draw(st.permutations(noisy))
    return ordered, shuffled


def final(states: dict) -> dict:
    return {
        c: (s.frequency, s.monetary, s.first_ms, s.last_ms, _segments(s), s.held)
        for c, s in states.items()
    }


def _segments(s) -> dict[str, str]:
    """'none' stored and 'none' absent mean the same (Redis can't delete a field)."""
    return {k: v for k, v in s.segments.items() if v != NONE}


@settings(max_examples=300, deadline=None)
@given(histories())
def test_duplicates_refunds_and_order_do_not_change_the_final_state(h: tuple[list, list]) -> None:
    ordered, shuffled = h
    big = 10 * 365 * DAY
    e = Engine([Rfm8(90 * DAY, 2, 1000 * UNIT), Bands()], Policy(big, big, big))
    want: dict = {}
    e.apply_events(want, ordered)
    e.advance(list(want.values()), 2000 * DAY)
    got: dict = {}
    out = e.apply_events(got, shuffled)
    e.advance(list(got.values()), 2000 * DAY)
    assert out.rejected == []
    assert out.duplicates == len(shuffled) - len(ordered)
    assert final(got) == final(want)
    assert all(s.monetary >= 0 and s.frequency >= 0 for s in got.values())
