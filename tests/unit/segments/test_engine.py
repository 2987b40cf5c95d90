"""Engine: applying purchases, due times, decays, catch-up, chained decays."""

from __future__ import annotations

from segments import NEVER, CustomerState, Engine, Purchase, Rfm8
from tests.unit.segments.fixtures import Bands

DAY = 86_400_000
UNIT = 10_000


def rfm8() -> Rfm8:
    return Rfm8(recency_ms=90 * DAY, frequency_cut=2, monetary_cut_units=1000 * UNIT)


def buy(c: str, n: int, day: float, amount: int = 600) -> Purchase:
    return Purchase(c, f"{c}-{n}", int(day * DAY), amount * UNIT)


def moves(drafts: list) -> list[tuple[str, str, str, float]]:
    return [(d.from_segment, d.to_segment, d.cause, d.effective_ms / DAY) for d in drafts]


def test_first_purchase_is_a_transition_from_none() -> None:
    e, states = Engine([rfm8()]), {}
    out = e.apply_events(states, [buy("c", 1, 10)]).transitions
    assert moves(out) == [("none", "new", "first_purchase", 10)]
    s = states["c"]
    assert (s.frequency, s.monetary, s.first_ms, s.last_ms) == (1, 600 * UNIT, 10 * DAY, 10 * DAY)


def test_purchases_move_up_and_unchanged_segment_emits_nothing() -> None:
    e, states = Engine([rfm8()]), {}
    out = e.apply_events(states, [buy("c", 1, 10), buy("c", 2, 11), buy("c", 3, 12)]).transitions
    assert moves(out) == [
        ("none", "new", "first_purchase", 10),
        ("new", "high_value", "purchase", 11),  # f=2, m=1200
    ]
    assert out[1].event_id == "c-2"


def test_due_time_is_last_purchase_plus_recency() -> None:
    e, states = Engine([rfm8()]), {}
    e.apply_events(states, [buy("c", 1, 10), buy("c", 2, 12)])
    assert e.next_due([states["c"]]).tolist() == [(12 + 90) * DAY]
    assert e.next_due([CustomerState("nobody")]).tolist() == [NEVER]


def test_due_time_boundaries() -> None:
    e, states = Engine([rfm8()]), {}
    e.apply_events(states, [buy("c", 1, 0), buy("c", 2, 0)])
    s = states["c"]
    assert e.advance([s], 90 * DAY - 1).transitions == []
    assert s.segments["rfm8"] == "high_value"
    out = e.advance([s], 90 * DAY).transitions
    assert moves(out) == [("high_value", "dormant", "recency_decay", 90)]
    assert e.next_due([s]).tolist() == [NEVER]
    assert e.advance([s], 900 * DAY).transitions == []


def test_left_alone_exactly_one_decay_at_the_right_time() -> None:
    e, states = Engine([rfm8()]), {}
    e.apply_events(states, [buy("c", 1, 5), buy("c", 2, 6)])
    out = []
    for day in range(0, 400, 7):  # a timer ticking weekly
        out += e.advance([states["c"]], day * DAY).transitions
    assert moves(out) == [("high_value", "dormant", "recency_decay", 96)]
    assert out[0].scores == {"r": 1, "f": 2, "m": 2}


def test_chained_decays_in_order_each_at_its_own_time() -> None:
    e, states = Engine([Bands()]), {}
    e.apply_events(states, [buy("c", 1, 0)])
    out = e.advance([states["c"]], 365 * DAY).transitions
    assert moves(out) == [
        ("active", "cooling", "recency_decay", 30),
        ("cooling", "lapsed", "recency_decay", 90),
    ]


def test_late_purchase_catches_up_the_decay_first() -> None:
    e, states = Engine([rfm8()]), {}
    e.apply_events(states, [buy("c", 1, 0), buy("c", 2, 1)])
    out = e.apply_events(states, [buy("c", 3, 200)]).transitions  # timer never ran
    assert moves(out) == [
        ("high_value", "dormant", "recency_decay", 91),
        ("dormant", "high_value", "purchase", 200),
    ]


def test_out_of_order_event_is_classified_at_the_cursor_not_in_the_past() -> None:
    e, states = Engine([rfm8()]), {}
    e.apply_events(states, [buy("c", 1, 100)])
    # an older event arrives late
    out = e.apply_events(states, [buy("c", 2, 50, amount=500)]).transitions
    s = states["c"]
    assert (s.last_ms, s.first_ms, s.cursor_ms) == (100 * DAY, 50 * DAY, 100 * DAY)
    assert moves(out) == [("new", "high_value", "purchase", 100)]


def test_money_is_exact() -> None:
    e, states = Engine([rfm8()]), {}
    e.apply_events(states, [Purchase("c", f"e{i}", DAY, 1) for i in range(10)])  # 0.0001 × 10
    assert states["c"].monetary == 10


def test_several_customers_in_one_batch_each_get_their_own_history() -> None:
    e, states = Engine([rfm8(), Bands()]), {}
    out = e.apply_events(states, [buy("a", 1, 0), buy("b", 1, 0), buy("a", 2, 1)]).transitions
    by = {(d.customer_id, d.scheme): d.to_segment for d in out}
    assert by == {
        ("a", "rfm8"): "high_value",
        ("b", "rfm8"): "new",
        ("a", "bands"): "active",
        ("b", "bands"): "active",
    }


def test_rules_version_changes_with_cut_points() -> None:
    a = Engine([rfm8()]).rules_version
    b = Engine([Rfm8(recency_ms=60 * DAY, frequency_cut=2, monetary_cut_units=1)]).rules_version
    assert a != b
    assert a == Engine([rfm8()]).rules_version
