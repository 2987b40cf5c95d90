"""The columnar window totals equal the per-customer loops they replaced (issue #20).

The reference functions below are the loops ``segments.windows`` had before it read a
batch's purchase days as columns, kept here verbatim as the definition the fast path
must match on random states: same totals, same next expiry, to the millisecond.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from segments.model import CustomerState
from segments.windows import (
    NEVER,
    Batch,
    expires_at,
    next_expiries,
    next_expiry,
    windowed_between,
    windowed_values,
)

DAY = 86_400_000


def _old_values(states: list[CustomerState], axis: str, window: int, asof: np.ndarray | None):
    col = 0 if axis == "f" else 1
    out = np.zeros(len(states), dtype=np.int64)
    for i, s in enumerate(states):
        if not s.days:
            continue
        t = s.cursor_ms if asof is None else int(asof[i])
        out[i] = sum(v[col] for d, v in s.days.items() if expires_at(d, window) > t)
    return out


def _old_between(states: list[CustomerState], near: int, far: int, asof: np.ndarray):
    out = np.zeros(len(states), dtype=np.int64)
    for i, s in enumerate(states):
        t = int(asof[i])
        out[i] = sum(
            v[1] for d, v in s.days.items() if expires_at(d, near) <= t < expires_at(d, far)
        )
    return out


def _old_expiry(s: CustomerState, windows: list[int]) -> int | None:
    best = None
    for w in windows:
        for d in s.days:
            t = expires_at(d, w)
            if t > s.cursor_ms and (best is None or t < best):
                best = t
    return best


_day_totals = st.lists(st.integers(-3, 5), min_size=2, max_size=2).map(
    lambda v: [v[0], v[1] * 10**9]  # refunds make totals negative; money spans 1e10+
)
_state = st.builds(
    lambda i, days, cursor: CustomerState(f"c{i}", cursor_ms=cursor, days=days),
    st.integers(0, 10**6),
    st.dictionaries(st.integers(0, 400), _day_totals, max_size=12),
    # on day boundaries half the time: where a day leaves a window (the edge cases)
    st.integers(0, 420).map(lambda d: d * DAY) | st.integers(0, 420 * DAY),
)


@settings(max_examples=120, deadline=None)
@given(
    states=st.lists(_state, max_size=12),
    windows=st.lists(st.integers(1, 200).map(lambda d: d * DAY), min_size=1, max_size=3),
    shift=st.lists(
        st.integers(-50, 50).map(lambda d: d * DAY) | st.integers(-50 * DAY, 50 * DAY),
        min_size=12,
        max_size=12,
    ),
)
def test_columnar_windows_equal_the_per_customer_loops(
    states: list[CustomerState], windows: list[int], shift: list[int]
) -> None:
    asof = np.array([s.cursor_ms + shift[i] for i, s in enumerate(states)], dtype=np.int64)
    for w in windows:
        for axis in ("f", "m"):
            assert windowed_values(states, axis, w, asof).tolist() == (
                _old_values(states, axis, w, asof).tolist()
            )
            assert windowed_values(states, axis, w).tolist() == (
                _old_values(states, axis, w, None).tolist()
            )
        assert windowed_between(states, w, 2 * w, asof).tolist() == (
            _old_between(states, w, 2 * w, asof).tolist()
        )
    batch = Batch(states)  # its day columns made once, then read by every call below
    for w in windows:
        assert windowed_values(batch, "m", w, asof).tolist() == (
            _old_values(states, "m", w, asof).tolist()
        )
        assert windowed_between(batch, w, 2 * w, asof).tolist() == (
            _old_between(states, w, 2 * w, asof).tolist()
        )
    assert next_expiries(batch, sorted(windows)).tolist() == (
        next_expiries(states, sorted(windows)).tolist()
    )
    got = next_expiries(states, sorted(windows)).tolist()
    want = [_old_expiry(s, sorted(windows)) for s in states]
    assert got == [NEVER if t is None else t for t in want]
    assert [next_expiry(s, windows) for s in states] == want
