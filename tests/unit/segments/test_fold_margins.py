from __future__ import annotations

import copy
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segments import Engine
from segments.grid import Axis, GridScheme
from segments.value import ValueModel
from tests.unit.segments.test_fold_every import _engine
from tests.unit.segments.test_fold_hard import PARAMS, plan, same

DAY = 86_400_000
UNIT = 10_000


def grid(name, axes, h):
    bands = [a.bands for a in axes]
    cells = {}
    for c in itertools.product(*[range(1, b + 1) for b in bands]):
        s = sum(c) - len(c)
        cells[c] = f"k{s // 2}" if name != "hr" else f"k{s % 3}"
    labels = {v: v for v in cells.values()}
    return GridScheme(name, axes, cells, labels, hysteresis=h)


def schemes(model, h1, h2, h3):
    return [
        grid(
            "hp",
            [Axis("f", (2, 4), None, 90 * DAY), Axis("p", (300, 500, 700), None, None, model)],
            h1,
        ),
        grid(
            "hc", [Axis("m", (100 * UNIT, 400 * UNIT), None, 365 * DAY), Axis("c", (100, 200))], h2
        ),
        grid("hg", [Axis("r", (30 * DAY, 90 * DAY)), Axis("g", (80, 120), None, 30 * DAY)], h3),
        grid(
            "hr", [Axis("r", (7 * DAY, 45 * DAY)), Axis("f", (2, 3)), Axis("a", (100 * UNIT,))], h1
        ),
    ]


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    plan(),
    st.sampled_from([0.05, 0.2, 0.5]),
    st.sampled_from([0.0, 0.25, 0.5]),
    st.sampled_from([0.1, 0.3, 0.9]),
    st.integers(0, 2),
)
def test_hyst(p, h1, h2, h3, k):
    batches, acts = p
    m1, m2 = ValueModel(PARAMS[k], 500, -1000.0, 0), ValueModel(PARAMS[k], 500, -1000.0, 0)
    f, r = Engine(schemes(m1, h1, h2, h3)), Engine(schemes(m2, h1, h2, h3))
    assert f.foldable
    r.foldable = False
    a, b = {}, {}
    for batch, act in zip(batches, acts, strict=False):
        same(f.apply_events(a, copy.deepcopy(batch)), r.apply_events(b, batch), a, b)
        assert f.next_due(list(a.values())).tolist() == r.next_due(list(b.values())).tolist()
        if act is not None and act[0] == "tick":
            t = act[1] + act[2]
            same(f.advance(list(a.values()), t), r.advance(list(b.values()), t), a, b)
    same(f.advance(list(a.values()), 2000 * DAY), r.advance(list(b.values()), 2000 * DAY), a, b)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(plan(), plan())
def test_rules_change_all_to_custom(p1, p2):
    """States built under 'all', then a different (custom) scheme set: first points
    have old stamps."""
    f, r = (
        _engine(ValueModel(PARAMS[0], 500, -1000.0, 0)),
        _engine(ValueModel(PARAMS[0], 500, -1000.0, 0)),
    )
    r.foldable = False
    a, b = {}, {}
    for batch in p1[0]:
        same(f.apply_events(a, copy.deepcopy(batch)), r.apply_events(b, batch), a, b)
    m1, m2 = ValueModel(PARAMS[1], 500, -1000.0, 0), ValueModel(PARAMS[1], 500, -1000.0, 0)
    f, r = Engine(schemes(m1, 0.2, 0.25, 0.3)), Engine(schemes(m2, 0.2, 0.25, 0.3))
    r.foldable = False
    for batch, act in zip(p2[0], p2[1], strict=False):
        same(f.apply_events(a, copy.deepcopy(batch)), r.apply_events(b, batch), a, b)
        if act is not None:
            t = act[-1] if act[0] == "recal" else act[1]
            same(f.advance(list(a.values()), t), r.advance(list(b.values()), t), a, b)
    same(f.advance(list(a.values()), 2000 * DAY), r.advance(list(b.values()), 2000 * DAY), a, b)
