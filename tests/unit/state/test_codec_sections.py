"""Codec v3's optional sections: the last CLV (14) and the open win-back returns (15)
survive the trip, cost nothing when absent, and hashes written before them still load."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.times import DAY_MS
from segments.model import CustomerState
from state.codec import decode_state, encode_state
from tests.unit.state.test_codec_v3 import T0, _customer, _hash, _size, names, near, states

clvs = st.none() | st.integers(-(10**9), 10**12)
days = st.integers(-50_000, 50_000).map(lambda d: d * DAY_MS)  # an entry is kept as its day
opens = st.lists(st.tuples(names, days, near).map(list), max_size=4)


@settings(max_examples=100, deadline=None)
@given(states(), clvs, opens)
def test_clv_and_open_returns_survive_the_trip(
    s: CustomerState, clv: int | None, returns: list[list[str | int]]
) -> None:
    s.clv, s.returns = clv, returns
    flat = encode_state(s)
    assert decode_state(s.customer_id, flat) == s
    assert decode_state(s.customer_id, _hash(flat)) == s


@settings(max_examples=50, deadline=None)
@given(states())
def test_without_them_nothing_is_written(s: CustomerState) -> None:
    """No CLV and nothing open: the sections are left out (zero bytes), and the hash
    reads back as no CLV, nothing open."""
    flat = encode_state(s)
    value = "".join(flat[1::2])
    assert value.count("\n") <= 13  # fourteen sections at most: 14 and 15 not written
    got = decode_state(s.customer_id, _hash(flat))
    assert got.clv is None and got.returns == []


OLD_V3 = {
    "a": "3 c27 19b6c8db222 0 1499ebbc =pRit2kN0/3 1b4y\n4zyp\n2\n"
    "yBTCxWonYyXYH4tyAhhC6f1YUkKENiiu1HPz\n012\n~-o0 ~-o1 ~-o2\n3e8 40d 432\n012\n\n\n"
    "1499ebbc a4cf5de a4cf5de\n*"
}
"""A hash written by the v3 writer before sections 14 and 15 (main at 215c7a9)."""


def test_an_old_v3_hash_without_the_sections_decodes() -> None:
    s = decode_state("c0012345", OLD_V3)
    assert (s.frequency, s.segments["rfm8"], s.clv, s.returns) == (3, "high_value", None, [])
    assert encode_state(s) == ["a", OLD_V3["a"]]  # and is written back the same


def test_bytes_per_customer_added() -> None:
    """What a realistic customer pays: the CLV (~5 bytes with its newline) when the
    value model is on; an open return (~15 bytes) only for the 90 days after one."""
    base = _customer(30)
    plain = _size(encode_state(base))
    valued = _size(encode_state(dataclasses.replace(base, clv=123_456)))
    both = dataclasses.replace(
        base, clv=123_456, returns=[["rfm8", T0 - 120 * DAY_MS, T0 - 3 * DAY_MS]]
    )
    returned = _size(encode_state(both))
    assert valued - plain <= 6
    assert returned - valued <= 16
    print(f"plain {plain} B, +clv {valued - plain} B, +open return {returned - valued} B")
