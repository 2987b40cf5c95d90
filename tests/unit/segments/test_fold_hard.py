"""Harder fold == rounds cases (review of the fold path): exact ties on day boundaries,
old stamps, recalibration sweeps between batches, full refunds, resends."""

from __future__ import annotations

import copy
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segments import Purchase, Refund
from segments.bgnbd import BgNbdParams
from segments.value import ValueModel
from tests.unit.segments.test_fold_every import _engine, by_customer

DAY = 86_400_000
UNIT = 10_000

PARAMS = [
    BgNbdParams(r=0.8, alpha=12.0, a=0.3, b=4.0),
    BgNbdParams(r=0.3, alpha=4.0, a=0.8, b=1.5),
    BgNbdParams(r=2.0, alpha=30.0, a=0.05, b=9.0),
]


def pair(k: int, cut: int):
    f = _engine(ValueModel(PARAMS[k], 500, -1000.0, 0))
    r = _engine(ValueModel(PARAMS[k], 500, -1000.0, 0))
    f.cut_version = r.cut_version = cut
    r.foldable = False
    assert f.foldable
    return f, r


OFFS = [0, 0, 0, 1, DAY - 1, DAY // 2]


@st.composite
def plan(draw):
    n = draw(st.integers(1, 60))
    customers = draw(st.integers(1, 6))
    events = []
    orders = []
    clock = {f"c{i}": draw(st.integers(0, 30)) * DAY for i in range(customers)}
    for i in range(n):
        c = f"c{draw(st.integers(0, customers - 1))}"
        step = draw(st.sampled_from([0, 0, 1, 7, 30, 45, 90, 180, 365]))
        clock[c] += step * DAY
        t = clock[c] + draw(st.sampled_from(OFFS))
        if draw(st.integers(0, 6)) == 0:
            t -= draw(st.integers(0, 30)) * DAY
        kind = draw(st.sampled_from(["buy", "buy", "buy", "refund", "resend"]))
        if kind == "resend" and events:
            events.append(draw(st.sampled_from(events)))
            continue
        if kind == "refund":
            known = [o for o in orders if o[0] == c]
            if known and draw(st.booleans()):
                o = draw(st.sampled_from(known))
                amount = o[2] if draw(st.booleans()) else draw(st.integers(1, 300)) * UNIT
                order = o[1]
            else:
                order, amount = f"o{draw(st.integers(0, n))}", draw(st.integers(1, 300)) * UNIT
            events.append(Refund(c, f"r{i}", t, amount, order, f"ref{i}"))
            continue
        order = f"o{i}" if draw(st.integers(0, 4)) else f"o{draw(st.integers(0, i))}"
        amount = draw(st.sampled_from([50, 100, 150, 200, 400])) * UNIT
        orders.append((c, order, amount))
        events.append(Purchase(c, f"e{i}", t, amount, order))
    cuts = sorted(draw(st.lists(st.integers(1, n), max_size=5, unique=True)))
    bounds = [0, *cuts, n]
    bs = [events[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    # after each batch: None, ("tick", t), ("recal", model index, t)
    acts = draw(
        st.lists(
            st.one_of(
                st.none(),
                st.tuples(
                    st.just("tick"),
                    st.integers(0, 1500).map(lambda d: d * DAY),
                    st.sampled_from(OFFS),
                ),
                st.tuples(
                    st.just("recal"), st.integers(0, 2), st.integers(0, 1500).map(lambda d: d * DAY)
                ),
            ),
            min_size=len(bs),
            max_size=len(bs),
        )
    )
    return bs, acts


def same(fa, ra, a, b):
    assert by_customer(fa) == by_customer(ra)
    assert a == b


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(plan(), st.booleans())
def test_hard(p, replay):
    batches, acts = p
    cut = 3
    f, r = pair(0, cut)
    f.replay = r.replay = replay
    a, b = {}, {}
    for batch, act in zip(batches, acts, strict=False):
        same(f.apply_events(a, copy.deepcopy(batch)), r.apply_events(b, batch), a, b)
        assert f.next_due(list(a.values())).tolist() == r.next_due(list(b.values())).tolist()
        if act is None:
            continue
        if act[0] == "tick":
            t = act[1] + act[2]
            same(f.advance(list(a.values()), t), r.advance(list(b.values()), t), a, b)
        else:
            cut += 1
            f, r = pair(act[1], cut)
            f.replay = r.replay = replay
            same(
                f.reevaluate(list(a.values()), act[2]), r.reevaluate(list(b.values()), act[2]), a, b
            )
    same(f.advance(list(a.values()), 2000 * DAY), r.advance(list(b.values()), 2000 * DAY), a, b)
