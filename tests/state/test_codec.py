"""A customer's state survives the trip through its Redis hash unchanged."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.transition import CAUSES
from segments.engine import event_digest
from segments.model import CustomerState, HeldRefund
from state.codec import _seen, decode_state, encode_state

ms = st.integers(-(2**45), 2**45)
ids = st.text(min_size=1, max_size=12)
states = st.builds(
    CustomerState,
    customer_id=ids,
    frequency=st.integers(0, 10**6),
    monetary=st.integers(-(2**50), 2**50),
    first_ms=st.none() | ms,
    last_ms=ms,
    cursor_ms=ms,
    segments=st.dictionaries(st.sampled_from(["rfm8", "simple"]), ids, max_size=2),
    seen=st.dictionaries(ids.map(event_digest), ms, max_size=40),
    orders=st.dictionaries(ids, st.lists(ms, min_size=3, max_size=3), max_size=20),
    held=st.lists(st.builds(HeldRefund, ids, ids, ms, ms, ms, ids), max_size=3),
    days=st.dictionaries(
        st.integers(0, 40_000), st.lists(st.integers(-9, 10**9), min_size=2, max_size=2), max_size=5
    ),
    stamp=st.sampled_from(["", "a518adda4374/0", "a518adda4374/17"]),
    history=st.lists(
        st.tuples(
            st.sampled_from(["rfm8", "rfm125", "churn_warning"]),
            st.sampled_from(["none", "new", "high_value", "at_risk"]),
            st.sampled_from(["none", "dormant", "cant_lose_them"]),
            st.sampled_from(list(CAUSES)),
            ms,
        ).map(list),
        max_size=5,
    ),
)


def _hash(s: CustomerState) -> dict[str, str]:
    flat = [str(x) for x in encode_state(s)]
    return dict(zip(flat[::2], flat[1::2], strict=True))


@settings(max_examples=300, deadline=None)
@given(states)
def test_encode_then_decode_is_the_identity(s: CustomerState) -> None:
    h = _hash(s)
    assert decode_state(s.customer_id, h) == s
    assert decode_state(s.customer_id, [x for kv in h.items() for x in kv]) == s


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(ids.map(event_digest), ms, max_size=40))
def test_the_dedupe_window_parses_like_the_plain_loop(seen: dict[str, int]) -> None:
    raw = ",".join(f"{d}:{t}" for d, t in seen.items())
    plain = {}
    for item in raw.split(",") if raw else []:
        digest, _, t = item.partition(":")
        plain[digest] = int(t)
    assert _seen(raw) == plain == seen
