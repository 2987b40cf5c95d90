"""Codec v3: every state survives the trip, v2 hashes read the same, and the rolling-window
days (a year of them with the shipped pyramid) cost a few bytes each (issue #20)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.times import DAY_MS
from schemas.transition import CAUSES
from segments.engine import event_digest
from segments.model import CustomerState, HeldRefund
from state.codec import decode_state, encode_state
from state.codec_v2 import encode_v2
from state.names import NAMES

T0 = 1_767_225_600_000
ms = st.integers(-(2**45), 2**45)
near = st.integers(T0 - 400 * DAY_MS, T0)  # a year's times: the deltas are short
ids = st.text(min_size=1, max_size=12)  # any unicode, spaces and markers included
ascii_ids = st.text("abc-o0123456789", min_size=1, max_size=8)
# coded names, and names spelled out: custom, one character, markers, a space, unicode
names = st.sampled_from([*NAMES, "my_tier", "x", "", "'q", "~z", "[v", "a b", "客户"])
money = st.integers(-(2**40), 2**40) | st.integers(0, 10**6).map(lambda x: x * 100)
day_totals = st.lists(st.integers(-9, 10**9) | st.integers(1, 3), min_size=2, max_size=2)


@st.composite
def states(draw: st.DrawFn) -> CustomerState:
    """Realistic and hostile states alike; the days are often exactly what the orders say
    (what v3 leaves out), sometimes with a day more or one that differs."""
    cid = draw(ids | ascii_ids)
    cursor = draw(near | ms)
    order_ids = ids | ascii_ids | ascii_ids.map(lambda x: cid + x)
    orders = draw(
        st.dictionaries(order_ids, st.tuples(money, money, near | ms).map(list), max_size=12)
    )
    days: dict[int, list[int]] = {}
    if draw(st.booleans()):
        for remaining, _, t in orders.values():
            bucket = days.setdefault(t // DAY_MS, [0, 0])
            bucket[0] += 1
            bucket[1] += remaining
    days |= draw(st.dictionaries(st.integers(-50_000, 50_000), day_totals, max_size=8))
    return CustomerState(
        customer_id=cid,
        frequency=draw(st.integers(0, 10**6)),
        monetary=draw(money),
        first_ms=draw(st.none() | near | ms),
        last_ms=draw(near | ms),
        cursor_ms=cursor,
        segments=draw(st.dictionaries(names, names, max_size=10)),
        seen=draw(st.dictionaries(ids.map(event_digest), near | ms, max_size=20)),
        orders=orders,
        held=draw(st.lists(st.builds(HeldRefund, ids, ids, money, ms, ms, ids), max_size=3)),
        days=days,
        stamp=draw(st.sampled_from(["", "a518adda4374/0", "a518adda4374/17", "=x", "'y"])),
        history=draw(
            st.lists(
                st.tuples(names, names, names, st.sampled_from(list(CAUSES)), near | ms).map(list),
                max_size=40,
            )
        ),
    )


def _hash(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _size(flat: list[str]) -> int:
    """Characters of the hash's values (a long state is chunked over several)."""
    return sum(map(len, flat[1::2]))


@settings(max_examples=100, deadline=None)
@given(states())
def test_encode_then_decode_is_the_identity(s: CustomerState) -> None:
    flat = encode_state(s)
    assert decode_state(s.customer_id, flat) == s  # a LOAD reply: a flat list
    assert decode_state(s.customer_id, _hash(flat)) == s  # redis-py: a dict


@settings(max_examples=100, deadline=None)
@given(states())
def test_a_state_written_by_the_v2_codec_decodes_identically(s: CustomerState) -> None:
    """A namespace written before v3 loads unchanged, with or without a schedule pointer."""
    h = _hash(encode_v2(s))
    assert decode_state(s.customer_id, h) == s
    assert decode_state(s.customer_id, h | {"u": "123"}) == s


def _customer(days: int) -> CustomerState:
    """A customer buying on every other day for ``days`` days, one order a day, the last
    few still in the refund window: what the shipped pyramid's 365-day window keeps."""
    cid = "c0012345"
    times = [T0 - d * DAY_MS - d * 7_919 for d in range(days, 0, -2)]
    spend = [(1_000 + 37 * i) * 100 for i in range(len(times))]
    orders = {f"{cid}-o{i}": [a, a, t] for i, (a, t) in enumerate(zip(spend, times, strict=True))}
    recent = dict(list(orders.items())[-3:])
    return CustomerState(
        cid,
        len(times),
        sum(spend),
        times[0],
        times[-1],
        times[-1],
        {"rfm8": "high_value", "rfm27": "champions", "pyramid": "vip", "lifecycle": "stability"},
        {event_digest(o): t for o, (_, _, t) in recent.items()},
        recent,
        days={t // DAY_MS: [1, a] for a, t in zip(spend, times, strict=True)},
        stamp="a518adda4374/3",
        history=[["pyramid", "major", "vip", "purchase", times[-1]]],
    )


def test_a_year_of_purchase_days_costs_a_few_bytes_a_day() -> None:
    """v2 spent ~24 bytes a day (JSON); v3 a day delta and an amount in hundredths, and
    nothing for the days the orders in the refund window already say."""
    year, bare = _customer(365), _customer(365)
    bare.days = {}
    size, without = _size(encode_state(year)), _size(encode_state(bare))
    assert decode_state(year.customer_id, encode_state(year)) == year
    kept = len(year.days) - 3  # the orders' three days are not written
    assert size - without <= 8 * kept, (size - without, kept)
    assert _size(encode_v2(year)) - without > 2.5 * (size - without)


def test_days_the_orders_say_are_left_out_but_never_guessed() -> None:
    """Days equal to what the orders say cost one character; a day that differs (a
    refund retracted elsewhere, an order counted on another day) is written out."""
    s = _customer(6)  # three orders on three days, all kept
    assert encode_state(s)[1].rsplit("\n", 1)[1] == "*"  # only the mark
    refunded, pruned = _customer(6), _customer(6)
    refunded.days[max(refunded.days)][1] -= 100
    del pruned.days[min(pruned.days)]  # a window shorter than the refund window
    for other in (refunded, pruned):
        assert "*" not in encode_state(other)[1]
        assert decode_state(other.customer_id, encode_state(other)) == other


def test_segment_codes_run_together() -> None:
    """Ten schemes (the shipped RFM and management files) cost 20 characters, not 40."""
    s = CustomerState("c1", segments={n: "none" for n in NAMES[1:11]})
    core = encode_state(s)[1].split("\n")[0]
    assert core.endswith(" " + "".join(f"{c}0" for c in "123456789a")), core
    assert decode_state("c1", encode_state(s)) == s


def test_an_events_time_is_written_once() -> None:
    """A first purchase's time is its digest's, its order's and its four transitions':
    one entry of the time table, then one index character each."""
    t = T0 - 3 * DAY_MS - 1_234_567
    s = CustomerState(
        "c9",
        1,
        500_000,
        t,
        t,
        T0,
        {"rfm8": "new", "rfm27": "recent", "churn_warning": "on_track", "lifecycle": "exploration"},
        {event_digest("e1"): t},
        {"c9-o1": [500_000, 500_000, t]},
        days={t // DAY_MS: [1, 500_000]},
        history=[
            [scheme, "none", to, "first_purchase", t]
            for scheme, to in [
                ("rfm8", "new"),
                ("rfm27", "recent"),
                ("churn_warning", "on_track"),
                ("lifecycle", "exploration"),
            ]
        ],
    )
    sec = encode_state(s)[1].split("\n")
    assert (sec[2], sec[4], sec[7]) == ("0000", "0", "0")
    assert sec[10] == f"{T0 - t:x}"  # the table: the one time
    assert decode_state("c9", encode_state(s)) == s
    assert len(encode_state(s)[1]) < len(encode_v2(s)[1]) - 5 * len(f"{T0 - t:x}")
