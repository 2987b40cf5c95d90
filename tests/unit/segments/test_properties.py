"""Property tests of the engine's invariants (hypothesis)."""

from __future__ import annotations

import copy
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from segments import Engine, Purchase, Rfm8
from tests.unit.segments.fixtures import Bands

DAY = 86_400_000
UNIT = 10_000


def engine() -> Engine:
    return Engine(
        [Rfm8(recency_ms=30 * DAY, frequency_cut=3, monetary_cut_units=500 * UNIT), Bands()]
    )


purchases = st.lists(
    st.builds(
        lambda c, t, a: (f"c{c}", t, a),
        st.integers(0, 4),
        st.integers(0, 400 * DAY),
        st.integers(1, 400 * UNIT),
    ),
    min_size=1,
    max_size=40,
).map(lambda xs: [Purchase(c, f"e{i}", t, a) for i, (c, t, a) in enumerate(xs)])


def final(states: dict) -> dict:
    return {
        c: (s.frequency, s.monetary, s.first_ms, s.last_ms, dict(s.segments))
        for c, s in states.items()
    }


def by_customer(drafts: list) -> dict[str, list]:
    out: dict[str, list] = {}
    for d in drafts:
        out.setdefault(d.customer_id, []).append(d)
    return out


@settings(max_examples=200, deadline=None)
@given(purchases, st.randoms(use_true_random=False))
def test_final_state_depends_only_on_the_set_of_events(events, rnd) -> None:
    end = 800 * DAY
    e = engine()
    a: dict = {}
    e.apply_events(a, events)
    e.advance(list(a.values()), end)
    shuffled = list(events)
    rnd.shuffle(shuffled)
    b: dict = {}
    e.apply_events(b, shuffled)
    e.advance(list(b.values()), end)
    assert final(a) == final(b)


@settings(max_examples=200, deadline=None)
@given(purchases, st.lists(st.integers(1, 10), min_size=1, max_size=10))
def test_batch_boundaries_change_nothing(events, sizes) -> None:
    e = engine()
    whole: dict = {}
    out_whole = e.apply_events(whole, events).transitions
    split: dict = {}
    out_split, i, k = [], 0, 0
    while i < len(events):
        n = sizes[k % len(sizes)]
        out_split += e.apply_events(split, events[i : i + n]).transitions
        i, k = i + n, k + 1
    assert whole == split
    assert by_customer(out_whole) == by_customer(out_split)


@settings(max_examples=200, deadline=None)
@given(purchases, st.lists(st.integers(0, 800 * DAY), max_size=30))
def test_timer_or_catch_up_give_the_same_transition_sequence(events, ticks) -> None:
    """Events arrive in time order; decays fired by a timer as time passes, or all caught
    up by the next event / at the end, give identical per-customer transitions."""
    end = 800 * DAY
    timeline = sorted(events, key=lambda p: p.occurred_ms)
    e = engine()

    caught: dict = {}
    out_caught = e.apply_events(caught, timeline).transitions
    out_caught += e.advance(list(caught.values()), end).transitions

    timed: dict = {}
    out_timed: list = []
    pending_ticks = sorted(ticks)
    for ev in timeline:
        while pending_ticks and pending_ticks[0] <= ev.occurred_ms:
            out_timed += e.advance(list(timed.values()), pending_ticks.pop(0)).transitions
        out_timed += e.apply_events(timed, [ev]).transitions
    for t in pending_ticks:
        out_timed += e.advance(list(timed.values()), t).transitions
    out_timed += e.advance(list(timed.values()), end).transitions

    assert by_customer(out_caught) == by_customer(out_timed)
    assert final(caught) == final(timed)


@settings(max_examples=100, deadline=None)
@given(purchases)
def test_applying_is_deterministic(events) -> None:
    e = engine()
    a: dict = {}
    b: dict = {}
    assert e.apply_events(a, copy.deepcopy(events)) == e.apply_events(b, events)
    assert a == b


@settings(max_examples=200, deadline=None)
@given(purchases, st.randoms(use_true_random=False), st.lists(st.integers(0, 800 * DAY)))
def test_each_customer_history_is_a_chain_that_never_runs_backwards(events, rnd, ticks) -> None:
    """Whatever the arrival order: every transition starts where the previous one ended,
    and effective times never decrease (a late event is dated at the cursor)."""
    shuffled = list(events)
    rnd.shuffle(shuffled)
    e = engine()
    states: dict = {}
    out: list = []
    for i, ev in enumerate(shuffled):
        if i < len(ticks):
            out += e.advance(list(states.values()), ticks[i]).transitions
        out += e.apply_events(states, [ev]).transitions
    for (_c, scheme), seq in _by_customer_scheme(out).items():
        assert seq[0].from_segment == "none"
        for prev, cur in itertools.pairwise(seq):
            assert cur.from_segment == prev.to_segment
            assert cur.effective_ms >= prev.effective_ms
        assert seq[-1].to_segment == states[seq[-1].customer_id].segments[scheme]


def _by_customer_scheme(drafts: list) -> dict[tuple[str, str], list]:
    out: dict[tuple[str, str], list] = {}
    for d in drafts:
        out.setdefault((d.customer_id, d.scheme), []).append(d)
    return out
