"""Rolling windows: F and M over the last N days move customers as purchases age out."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from segments import Engine, Purchase, Refund
from segments.grid import Axis, GridScheme
from segments.windows import expires_at

DAY = 86_400_000
UNIT = 10_000


def yearly(window_days: int = 30) -> GridScheme:
    """Frequent (2+ orders) and big (500+) within the window; R lifetime-free."""
    return GridScheme(
        "yearly",
        [
            Axis("f", (2,), window_ms=window_days * DAY),
            Axis("m", (500 * UNIT,), window_ms=window_days * DAY),
        ],
        {(1, 1): "quiet", (1, 2): "big", (2, 1): "frequent", (2, 2): "best"},
        {"quiet": "Q", "big": "B", "frequent": "F", "best": "BF"},
    )


def test_a_purchase_leaving_the_window_moves_the_customer_with_no_new_event() -> None:
    e = Engine([yearly(30)])
    states: dict = {}
    e.apply_events(
        states,
        [Purchase("c", "e1", 2 * DAY + 5, 300 * UNIT), Purchase("c", "e2", 10 * DAY, 300 * UNIT)],
    )
    s = states["c"]
    assert s.segments["yearly"] == "best"
    leave = expires_at(2, 30 * DAY)  # end of day 2 + 30 days
    assert leave == 33 * DAY
    assert int(e.next_due([s])[0]) == leave
    out = e.advance([s], leave - 1)
    assert out.transitions == []
    out = e.advance([s], leave)
    assert [(d.from_segment, d.to_segment, d.cause, d.effective_ms) for d in out.transitions] == [
        ("best", "quiet", "recency_decay", leave)
    ]
    assert s.frequency == 2 and s.monetary == 600 * UNIT  # lifetime figures untouched
    assert int(e.next_due([s])[0]) == expires_at(10, 30 * DAY)


def test_refunds_retract_from_the_window_and_a_full_refund_drops_the_order() -> None:
    e = Engine([yearly(30)])
    states: dict = {}
    e.apply_events(
        states,
        [
            Purchase("c", "e1", 1 * DAY, 600 * UNIT, "o1"),
            Purchase("c", "e2", 2 * DAY, 200 * UNIT, "o2"),
        ],
    )
    assert states["c"].segments["yearly"] == "best"
    out = e.apply_events(states, [Refund("c", "r1", 3 * DAY, 200 * UNIT, "o2")])
    assert out.rejected == []
    assert [(d.to_segment, d.cause) for d in out.transitions] == [("big", "refund")]
    assert states["c"].days == {1: [1, 600 * UNIT], 2: [0, 0]}


def test_late_event_whose_day_already_left_the_window_is_not_counted() -> None:
    e = Engine([yearly(30)])
    states: dict = {}
    e.apply_events(states, [Purchase("c", "e1", 100 * DAY, 600 * UNIT)])
    e.apply_events(states, [Purchase("c", "old", 10 * DAY, 100 * UNIT)])
    assert states["c"].frequency == 2
    assert states["c"].days == {100: [1, 600 * UNIT]}
    assert states["c"].segments["yearly"] == "big"


purchases = st.lists(
    st.builds(
        lambda c, t, a: (f"c{c}", t, a),
        st.integers(0, 3),
        st.integers(0, 200 * DAY),
        st.integers(1, 400 * UNIT),
    ),
    min_size=1,
    max_size=30,
).map(lambda xs: [Purchase(c, f"e{i}", t, a) for i, (c, t, a) in enumerate(xs)])


def final(states: dict) -> dict:
    return {c: (s.frequency, s.monetary, dict(s.segments), dict(s.days)) for c, s in states.items()}


@settings(max_examples=150, deadline=None)
@given(purchases, st.randoms(use_true_random=False), st.integers(0, 300 * DAY))
def test_windowed_state_depends_only_on_the_set_of_events(events, rnd, end) -> None:
    e = Engine([yearly(30)])
    a: dict = {}
    e.apply_events(a, events)
    e.advance(list(a.values()), 400 * DAY + end)
    shuffled = list(events)
    rnd.shuffle(shuffled)
    b: dict = {}
    for ev in shuffled:  # one at a time, timer runs in between
        e.apply_events(b, [ev])
        e.advance(list(b.values()), ev.occurred_ms)
    e.advance(list(b.values()), 400 * DAY + end)
    assert final(a) == final(b)
