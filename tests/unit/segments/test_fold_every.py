"""Every shipped scheme on the fold path gives exactly what the rounds give.

The rounds (:meth:`Engine._apply_round`, :meth:`Engine._due_until`) are the reference:
one vectorised pass per event and per due time. The fold (``segments.fold``) walks each
customer once and classifies every evaluation point of a batch at once; with the
management schemes that means rolling windows leaving (growth, windowed F and M, the
pyramid's 365 days), per-customer timed axes (cadence ``c``, P(alive) ``p``) and
lifecycle's hysteresis. States, drafts (keys, causes, effective times, scores),
rejections, duplicates and next due times must all be the same. (Value figures are computed
from the states, in stream/apply/encode.py: equal states give equal figures.)
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.rules import load_rules
from segments import Engine, Purchase, Refund, windows
from segments.bgnbd import BgNbdParams
from segments.check import build_scheme
from segments.grid import Axis, GridScheme
from segments.model import NONE, Columns, CustomerState
from segments.value import ValueModel
from tests.unit.segments.test_fold import by_customer

DAY = 86_400_000
UNIT = 10_000
RULES = load_rules("all")

_CUTS = {
    "r": (20 * DAY, 45 * DAY, 90 * DAY, 200 * DAY),
    "f": (1, 2, 3, 5),
    "m": (80 * UNIT, 200 * UNIT, 400 * UNIT, 900 * UNIT),
    "a": (120 * UNIT,),
}
"""Cut points for the quantile axes (the first ``len(quantiles)`` of each axis)."""


def _model() -> ValueModel:
    return ValueModel(BgNbdParams(r=0.8, alpha=12.0, a=0.3, b=4.0), 500, -1000.0, 0)


def _engine(model: ValueModel) -> Engine:
    schemes = []
    for name, spec in RULES.schemes.items():
        bare = build_scheme(name, spec)
        cuts = {
            a.name: _CUTS[a.name][: len(a.quantiles)] for a in bare.axes if a.quantiles is not None
        }
        schemes.append(build_scheme(name, spec, cuts, model))
    engine = Engine(schemes)
    engine.cut_version = 3
    engine.model = model
    return engine


def engines() -> tuple[Engine, Engine]:
    """(folding, round-based) engines over every shipped scheme, each with its own model
    (so neither reads crossings the other remembered)."""
    folding, rounds = _engine(_model()), _engine(_model())
    assert folding.foldable
    assert folding._windows and any(folding._timed.values())
    assert any(getattr(s, "hysteresis", 0) for s in folding.schemes)
    rounds.foldable = False
    return folding, rounds


@st.composite
def batches(draw: st.DrawFn) -> list[list[Purchase | Refund]]:
    """Batches of purchases (several per customer, regular or not), refunds (of known,
    unknown or too large orders, some before their purchase) and resends, over two
    years: windows leave, cadences and P(alive) fall, several due times in one batch."""
    n = draw(st.integers(1, 50))
    customers = draw(st.integers(1, 4))
    events: list[Purchase | Refund] = []
    orders: list[tuple[str, str]] = []
    clock = {f"c{i}": draw(st.integers(0, 100)) * DAY for i in range(customers)}
    for i in range(n):
        c = f"c{draw(st.integers(0, customers - 1))}"
        step = draw(st.sampled_from([0, 1, 7, 14, 30, 60, 120, 250]))
        clock[c] += step * DAY + draw(st.integers(0, DAY - 1))
        t = clock[c] - (draw(st.integers(0, 20)) * DAY if draw(st.integers(0, 9)) == 0 else 0)
        kind = draw(st.sampled_from(["buy", "buy", "buy", "buy", "refund", "resend"]))
        if kind == "resend" and events:
            events.append(draw(st.sampled_from(events)))
            continue
        if kind == "refund":
            known = [o for o in orders if o[0] == c]
            order = draw(st.sampled_from(known))[1] if known and draw(st.booleans()) else f"u{i}"
            amount = draw(st.integers(1, 300)) * UNIT
            events.append(Refund(c, f"r{i}", t, amount, order, f"ref{i}"))
            continue
        order = f"o{i}" if draw(st.integers(0, 5)) else f"o{draw(st.integers(0, i))}"
        orders.append((c, order))
        events.append(Purchase(c, f"e{i}", t, draw(st.integers(1, 400)) * UNIT, order))
    cuts = sorted(draw(st.lists(st.integers(1, n), max_size=4, unique=True)))
    bounds = [0, *cuts, n]
    return [events[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def _same(folding: Engine, rounds: Engine, a: dict, b: dict) -> None:
    assert a == b
    sa, sb = list(a.values()), list(b.values())
    assert folding.next_due(sa).tolist() == rounds.next_due(sb).tolist()


@settings(max_examples=150, deadline=None)
@given(batches(), st.lists(st.integers(0, 1200 * DAY), max_size=4))
def test_every_scheme_folds_as_the_rounds_apply(batches: list, ticks: list[int]) -> None:
    folding, rounds = engines()
    a: dict[str, CustomerState] = {}
    b: dict[str, CustomerState] = {}
    for i, batch in enumerate(batches):
        got = folding.apply_events(a, copy.deepcopy(batch))
        assert by_customer(got) == by_customer(rounds.apply_events(b, batch))
        _same(folding, rounds, a, b)
        if i < len(ticks):
            got = folding.advance(list(a.values()), ticks[i])
            want = rounds.advance(list(b.values()), ticks[i])
            assert by_customer(got) == by_customer(want)
            _same(folding, rounds, a, b)
    end = folding.advance(list(a.values()), 1500 * DAY)
    assert by_customer(end) == by_customer(rounds.advance(list(b.values()), 1500 * DAY))
    _same(folding, rounds, a, b)


@settings(max_examples=80, deadline=None)
@given(batches())
def test_every_scheme_folds_a_replay_as_the_rounds_replay_it(batches: list) -> None:
    """``Engine.replay``: each batch's customers also advance to its latest event."""
    folding, rounds = engines()
    folding.replay = rounds.replay = True
    a: dict[str, CustomerState] = {}
    b: dict[str, CustomerState] = {}
    for batch in batches:
        got = folding.apply_events(a, copy.deepcopy(batch))
        assert by_customer(got) == by_customer(rounds.apply_events(b, batch))
        _same(folding, rounds, a, b)


def test_a_silent_regular_buyer_moves_at_the_same_instants_on_both_paths() -> None:
    """A weekly buyer for a year, then nothing: cadence, P(alive), windows and recency
    all fire inside one advance; the fold must fire each at its own instant."""
    folding, rounds = engines()
    events = [Purchase("c", f"e{i}", i * 7 * DAY, 150 * UNIT, f"o{i}") for i in range(52)]
    a: dict[str, CustomerState] = {}
    b: dict[str, CustomerState] = {}
    folding.apply_events(a, events)
    rounds.apply_events(b, events)
    got = folding.advance(list(a.values()), 1000 * DAY)
    want = rounds.advance(list(b.values()), 1000 * DAY)
    assert by_customer(got) == by_customer(want)
    causes = {d.cause for d in got.transitions}
    assert causes == {"recency_decay"}
    moved = {d.scheme for d in got.transitions}
    assert {"alive", "churn_warning", "lifecycle", "loyalty", "pyramid"} <= moved
    assert len({d.effective_ms for d in got.transitions}) > 5
    _same(folding, rounds, a, b)
    assert np.all(folding.next_due(list(a.values())) > 1000 * DAY)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 8), st.integers(0, 700)),
        min_size=1,
        max_size=40,
    ),
    st.lists(st.sampled_from(["none", "low", "mid", "high"]), min_size=4, max_size=4),
)
def test_settle_is_classify_with_current_keys_one_point_at_a_time(
    rows: list[tuple[int, int, int]], stored: list[str]
) -> None:
    """The fold settles a margin over a run of points; the rounds apply it per point with
    the customer's current key. Values hover around the cuts (where the margin holds)."""
    cells = {(f, m): ("low", "mid", "high")[(f + m - 2) // 2] for f in (1, 2, 3) for m in (1, 2, 3)}
    scheme = GridScheme(
        "h",
        [Axis("f", (2, 5)), Axis("m", (100, 500))],
        cells,
        {"low": "L", "mid": "M", "high": "H"},
        hysteresis=0.2,
    )
    rows = sorted(rows, key=lambda r: r[0])  # per customer, in time order
    who = np.array([r[0] for r in rows])
    freq = np.array([r[1] for r in rows], dtype=np.int64)
    cols = Columns(
        last_ms=np.zeros(len(rows), np.int64),
        frequency=freq,
        monetary=np.array([r[2] for r in rows], dtype=np.int64),
        first_ms=np.zeros(len(rows), np.int64),
    )
    asof = np.zeros(len(rows), np.int64)
    starts = np.flatnonzero(np.concatenate(([True], who[1:] != who[:-1])))
    first_keys = [stored[int(who[j])] for j in starts]
    got = scheme.settle(scheme.classify(cols, asof), freq > 0, starts, first_keys, cols, asof)
    want: list[str] = []
    current = dict(zip(starts.tolist(), first_keys, strict=True))
    key = NONE
    for j in range(len(rows)):
        key = current.get(j, key)
        at = slice(j, j + 1)
        one = Columns(cols.last_ms[at], freq[at], cols.monetary[at], (), cols.first_ms[at])
        found = scheme.classify(one, asof[j : j + 1], [key])[0]
        key = found if freq[j] > 0 else NONE
        want.append(key)
    assert got.tolist() == want


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(-5, 900), max_size=12, unique=True),
    st.integers(-10 * DAY, 1000 * DAY),
    st.sampled_from([0, 1, DAY - 1, DAY, 90 * DAY, 365 * DAY + 7]),
)
def test_prune_drops_exactly_the_days_whose_window_has_ended(
    days: list[int], asof: int, window: int
) -> None:
    s = CustomerState("c", days={d: [1, 1] for d in days})
    windows.prune(s, asof, window)
    assert sorted(s.days) == sorted(d for d in days if windows.expires_at(d, window) > asof)
