"""The columnar fold gives exactly what the round-based path gives (states, drafts,
rejections, duplicates), whatever the batch holds."""

from __future__ import annotations

import copy
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from segments import Engine, Purchase, Refund, Rfm8
from segments.model import CustomerState, Outcome
from tests.unit.segments.fixtures import Bands

DAY = 86_400_000
UNIT = 10_000


def engines(recency_days: int = 30) -> tuple[Engine, Engine]:
    """(folding, round-based) engines over the same schemes."""

    def schemes() -> list:
        rfm8 = Rfm8(recency_ms=recency_days * DAY, frequency_cut=3, monetary_cut_units=500 * UNIT)
        return [rfm8, Bands()]

    folding, rounds = Engine(schemes()), Engine(schemes())
    assert folding.foldable
    rounds.foldable = False
    return folding, rounds


@st.composite
def batches(draw: st.DrawFn) -> list[list[Purchase | Refund]]:
    """Batches of purchases, refunds (of known, unknown or too large orders), resends."""
    n = draw(st.integers(1, 60))
    events: list[Purchase | Refund] = []
    orders: list[tuple[str, str]] = []
    for i in range(n):
        c = f"c{draw(st.integers(0, 4))}"
        t = draw(st.integers(0, 400 * DAY))
        kind = draw(st.sampled_from(["buy", "buy", "buy", "refund", "resend"]))
        if kind == "resend" and events:
            events.append(draw(st.sampled_from(events)))
            continue
        if kind == "refund":
            known = [o for o in orders if o[0] == c]
            order = draw(st.sampled_from(known))[1] if known and draw(st.booleans()) else f"u{i}"
            events.append(Refund(c, f"r{i}", t, draw(st.integers(1, 300)) * UNIT, order, f"ref{i}"))
            continue
        order = f"o{draw(st.integers(0, n))}"
        orders.append((c, order))
        events.append(Purchase(c, f"e{i}", t, draw(st.integers(1, 400)) * UNIT, order))
    cuts = sorted(draw(st.lists(st.integers(1, n), max_size=4, unique=True)))
    bounds = [0, *cuts, n]
    return [events[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def by_customer(out: Outcome) -> dict:
    got: dict = {}
    for d in out.transitions:
        got.setdefault(d.customer_id, []).append(d)
    for r in out.rejected:
        got.setdefault(("rejected", r.customer_id), []).append(r)
    got["duplicates"] = out.duplicates
    return got


@settings(max_examples=300, deadline=None)
@given(batches(), st.lists(st.integers(0, 800 * DAY), max_size=4))
def test_fold_equals_rounds(batches: list, ticks: list[int]) -> None:
    folding, rounds = engines()
    a: dict[str, CustomerState] = {}
    b: dict[str, CustomerState] = {}
    for i, batch in enumerate(batches):
        assert by_customer(folding.apply_events(a, copy.deepcopy(batch))) == by_customer(
            rounds.apply_events(b, batch)
        )
        assert a == b
        if i < len(ticks):
            got = folding.advance(list(a.values()), ticks[i])
            want = rounds.advance(list(b.values()), ticks[i])
            assert by_customer(got) == by_customer(want)
            assert a == b


@settings(max_examples=100, deadline=None)
@given(batches(), batches())
def test_fold_equals_rounds_after_a_rules_change(before: list, after: list) -> None:
    """States last evaluated under other rules: the first move says ``rules_change``."""
    old, _ = engines(recency_days=90)
    a: dict[str, CustomerState] = {}
    for batch in before:
        old.apply_events(a, batch)
    b = copy.deepcopy(a)
    folding, rounds = engines()
    for batch in after:
        assert by_customer(folding.apply_events(a, copy.deepcopy(batch))) == by_customer(
            rounds.apply_events(b, batch)
        )
        assert a == b
    got = folding.advance(list(a.values()), 900 * DAY)
    assert by_customer(got) == by_customer(rounds.advance(list(b.values()), 900 * DAY))
    assert a == b


@settings(max_examples=100, deadline=None)
@given(batches(), st.booleans())
def test_a_replay_batch_also_fires_what_is_due_by_its_latest_event(
    batches: list, fold: bool
) -> None:
    """``Engine.replay``: a batch, then ``advance`` of its customers to its latest event."""
    replaying, plain = engines()
    replaying.replay = True
    replaying.foldable = plain.foldable = fold
    a: dict[str, CustomerState] = {}
    b: dict[str, CustomerState] = {}
    for batch in batches:
        want = plain.apply_events(b, batch)
        latest = max(e.occurred_ms for e in batch)
        want.extend(
            plain.advance([b[c] for c in dict.fromkeys(e.customer_id for e in batch)], latest)
        )
        assert by_customer(replaying.apply_events(a, copy.deepcopy(batch))) == by_customer(want)
        assert a == b


def test_the_fold_is_refused_for_a_set_it_cant_carry() -> None:
    """Turning the fold on for a set it can't carry would drop that set's own due times
    without a word (review of the fold path): refused; turning it off is always fine."""
    import pytest

    folding, _ = engines()
    folding.can_fold = False  # as for a set with a non-grid scheme's own due times
    with pytest.raises(ValueError, match="can't take the fold path"):
        folding.foldable = True
    folding.foldable = False
    assert not folding.foldable


def test_score_dicts_are_the_rows_whatever_their_range() -> None:
    """Drafts share one dict per distinct score row; rows of values too wide to code in
    one int64 (not band numbers) still come out as their own rows."""
    import numpy as np

    from segments.fold import _score_dicts

    rng = np.random.default_rng(3)
    for high in (3, 10**6, 2**40):
        got = {a: rng.integers(-high, high, 200, dtype=np.int64) for a in ("r", "f", "m")}
        at = np.sort(rng.choice(200, 120, replace=False))
        want = [{a: int(v[k]) for a, v in got.items()} for k in at]
        assert _score_dicts(got, at).tolist() == want
    assert _score_dicts({}, np.arange(3)).tolist() == [{}, {}, {}]
