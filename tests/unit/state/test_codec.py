"""A customer's state survives the trip through its Redis hash unchanged."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.transition import CAUSES
from segments.engine import event_digest
from segments.model import CustomerState, HeldRefund
from state.codec import decode_state, encode_state
from state.codec_v1 import seen_v1

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
    assert seen_v1(raw) == plain == seen


@settings(max_examples=300, deadline=None)
@given(states)
def test_a_state_written_by_the_v1_codec_still_loads(s: CustomerState) -> None:
    """Hashes written before format v2 (one field per scalar) decode to the same state."""
    from state.codec_v1 import encode_v1

    flat = [str(x) for x in encode_v1(s)]
    h = dict(zip(flat[::2], flat[1::2], strict=True))
    assert decode_state(s.customer_id, h) == s
    assert decode_state(s.customer_id, h | {"u": "123"}) == s  # with a schedule pointer


def test_a_typical_state_is_one_short_field() -> None:
    """Names as codes, times as hex deltas, orders keyed by the customer's own prefix."""
    day = 86_400_000
    t = 1_767_225_600_000
    s = CustomerState(
        "c001293",
        2,
        1_894_700,
        t,
        t + 50 * day,
        t + 50 * day,
        {"rfm8": "potential", "rfm27": "recent"},
        {event_digest("e1"): t + 50 * day},
        {"c001293-o1": [341_600, 341_600, t], "c001293-o142": [1_553_100, 1_553_100, t + 50 * day]},
        stamp="a518adda4374/0",
        history=[
            ["rfm8", "none", "new", "first_purchase", t],
            ["rfm8", "new", "potential", "purchase", t + 50 * day],
        ],
    )
    from state.codec_v1 import encode_v1

    fields = encode_state(s)
    v1 = sum(len(str(x)) for x in encode_v1(s))
    assert fields[0] == "a" and len(fields) == 2 and len(fields[1]) < v1 * 0.6
    assert decode_state(s.customer_id, fields) == s


def test_a_long_state_is_chunked_under_the_listpack_limit() -> None:
    """A heavy customer's value is split into fields of at most CHUNK bytes (a single
    longer value would turn the whole hash into a hashtable), and joined back."""
    from state.codec import CHUNK

    orders = {f"order-{i:05d}": [i, i + 7, 1_700_000_000_000 + i * 3_600_000] for i in range(400)}
    for cid in ("c1", "客户-1"):
        s = CustomerState(cid, 400, 10**9, 1, 2, 3, {"rfm8": "high_value"}, orders=dict(orders))
        s.orders[f"订单 {cid}"] = [1, 2, 3]  # a space and non-ASCII: this section goes JSON
        fields = encode_state(s)
        assert len(fields) > 2
        assert all(len(v.encode()) <= CHUNK for v in fields[1::2])
        assert decode_state(cid, fields) == s
        h = dict(zip(fields[::2], fields[1::2], strict=True))
        assert decode_state(cid, h) == s
        # continuations of an older, longer state left in the hash are not read
        assert decode_state(cid, h | {"+99": "junk", "u": "1"}) == s
    short = CustomerState("c1", 1, 100, 1, 2, 3, {"rfm8": "new"})
    assert decode_state("c1", [*encode_state(short), "+1", "x"]) == short
