"""The validation fast path agrees with the full pydantic path.

``Validator.fast`` may only accept what ``Validator.check`` certainly accepts, and must
build the very engine event the slow path builds; everything else is left to ``check``,
so ``Validator.event`` rejects exactly like it (same error class, same message).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from schemas import load_settings
from schemas.errors import InvalidEvent
from schemas.times import to_ms
from stream.apply.messages import engine_event
from stream.apply.validate import Validator
from tests.support.corpus import bad_inputs

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
WALL = to_ms(NOW)
V = Validator(load_settings())


def _slow(raw: bytes | None) -> Any:
    try:
        return engine_event(V.check(raw, WALL))
    except InvalidEvent as exc:
        return ("rejected", exc.error_class, exc.message)


def _via_event(raw: bytes | None) -> Any:
    try:
        return V.event(raw, WALL)
    except InvalidEvent as exc:
        return ("rejected", exc.error_class, exc.message)


def test_the_fast_path_leaves_every_bad_input_to_pydantic() -> None:
    for case in bad_inputs(NOW):
        assert V.fast(case.raw, WALL) is None, case.name
        assert _via_event(case.raw) == _slow(case.raw), case.name
    assert V.fast(None, WALL) is None


def test_the_fast_path_takes_the_common_shape() -> None:
    raw = orjson.dumps(
        {
            "event_id": "e1",
            "customer_id": "顾客-7",
            "order_id": "o1",
            "occurred_at": "2026-03-01T10:00:00.123456+08:00",
            "amount": "12.30",
            "currency": "CNY",
        }
    )
    ev = V.fast(raw, WALL)
    assert ev is not None and ev == _slow(raw)


_ID_CHARS = list("abcXYZ09-_:.é顾")
_clean_ids = st.text(st.sampled_from(_ID_CHARS), min_size=1, max_size=40)
_odd_id_chars = st.sampled_from([*_ID_CHARS, " ", "\t", "{", "}", "\x00", "\u200b"])
_odd_ids = st.one_of(
    st.text(_odd_id_chars, min_size=0, max_size=8),
    st.text(_odd_id_chars, min_size=60, max_size=140),
    st.integers(-5, 5),
    st.none(),
    st.text(max_size=6),
)
_plain_amounts = st.from_regex(r"\A[1-9][0-9]{0,6}(\.[0-9]{1,2})?\Z")
_ODD_AMOUNTS = [
    *("0", "0.00", "1", "1.5", "1.50", "1.500", "1.505", "1e3", " 5", "5 ", "+5", "1_000"),
    *("999999.99", "1000000", "1000000.00", "1000000.01", ".5", "5.", "NaN", "-0.01"),
    *("00000000000001", "٣", "1,5"),
]
_odd_amounts = st.one_of(
    st.from_regex(r"\A[0-9]{1,13}(\.[0-9]{0,6})?\Z"),
    st.from_regex(r"\A-?0*[0-9]{0,4}(\.[0-9]{0,5})?\Z"),
    st.sampled_from(_ODD_AMOUNTS),
    st.integers(-3, 10**7),
    st.floats(allow_nan=True),
    st.booleans(),
)
_clean_times = st.datetimes(
    min_value=datetime(1900, 1, 2),  # noqa: DTZ001 - hypothesis takes naive bounds
    max_value=datetime(2026, 5, 30),  # noqa: DTZ001 - NOW is 2026-06-01
    timezones=st.timezones(),
).map(lambda t: t.isoformat())
_ODD_ZONES = [
    *("Z", "z", "+00:00", "-00:00", "+08:00", "-05:30", "+18:00", "+18:59", "+19:00"),
    *("+23:59", "+24:00", "-12:60", "+0800", "+08", "", " UTC"),
]


@st.composite
def _odd_times(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.one_of(st.text(max_size=30), st.integers(-(2**40), 2**40), st.none()))
    if draw(st.booleans()):
        return draw(st.datetimes(timezones=st.timezones())).isoformat()
    y = draw(st.sampled_from(["1899", "1900", "1969", "1970", "2024", "2026", "2199", "2200"]))
    mo = draw(st.sampled_from(["01", "02", "12", "13", "00", "1"]))
    d = draw(st.sampled_from(["01", "28", "29", "30", "31", "32", "00", "0٣", "１２"]))
    h = draw(st.sampled_from(["00", "09", "23", "24", "7"]))
    mi = draw(st.sampled_from(["00", "59", "60"]))
    s = draw(st.sampled_from(["00", "59", "60"]))
    frac = draw(st.sampled_from(["", ".", ".1", ".123", ".999999", ".1234567", ".000001"]))
    tz = draw(st.sampled_from(_ODD_ZONES))
    sep = draw(st.sampled_from(["T", "T", "T", " ", "t"]))
    text = f"{y}-{mo}-{d}{sep}{h}:{mi}:{s}{frac}{tz}"
    if draw(st.integers(0, 5)) == 0:
        text = draw(st.sampled_from(["", " "])) + text + draw(st.sampled_from(["", " "]))
    return text


_FIELDS = ["event_id", "customer_id", "order_id", "occurred_at", "amount", "currency"]
_ODD_CURRENCIES = ["CNY", "USD", "JPY", "cny", "XYZ", " CNY", 5]


@st.composite
def events(draw: st.DrawFn) -> bytes | None:
    """Well-formed events; half of them with a few fields (or the shape) made odd."""
    odd = set(
        draw(
            st.lists(
                st.sampled_from(
                    [*_FIELDS, "kind", "refund_of", "store_id", "channel", "extra", "drop"]
                ),
                max_size=3,
            )
        )
    )
    if draw(st.booleans()):
        odd = set()
    ev: dict[str, Any] = {f: draw(_odd_ids if f in odd else _clean_ids) for f in _FIELDS[:3]}
    ev["occurred_at"] = draw(_odd_times() if "occurred_at" in odd else _clean_times)
    ev["amount"] = draw(_odd_amounts if "amount" in odd else _plain_amounts)
    ev["currency"] = draw(st.sampled_from(_ODD_CURRENCIES)) if "currency" in odd else "CNY"
    kind = draw(st.sampled_from([None, "purchase", "refund"]))
    if "kind" in odd:
        kind = draw(st.sampled_from(["gift", 1, "Refund", None]))
    if kind is not None:
        ev["kind"] = kind
    if kind == "refund" or "refund_of" in odd:
        ev["refund_of"] = draw(_odd_ids if "refund_of" in odd else _clean_ids)
    if draw(st.booleans()):
        ev["store_id"] = draw(_odd_ids if "store_id" in odd else _clean_ids)
    if draw(st.booleans()):
        channel = st.one_of(st.text(max_size=70), st.none(), st.integers(-9, 9))
        ev["channel"] = draw(channel if "channel" in odd else st.text(max_size=64))
    if "extra" in odd:
        ev[draw(st.text(max_size=10))] = draw(st.text(max_size=5))
    if "drop" in odd:
        ev.pop(draw(st.sampled_from(sorted(ev))))
    raw = orjson.dumps(ev)
    mutation = draw(st.sampled_from([*["none"] * 17, "cut", "append", "huge"]))
    if mutation == "cut":
        return raw[: draw(st.integers(0, len(raw)))]
    if mutation == "append":
        return raw + draw(st.binary(max_size=3))
    if mutation == "huge":
        return b"x" * 70_000
    return raw


def _good(v: Any) -> bool:
    return not (isinstance(v, tuple) and v and v[0] == "rejected")


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events())
@example(orjson.dumps({"event_id": "e", "customer_id": "c", "order_id": "o",
                       "occurred_at": "2026-03-01T10:00:00+08:00", "amount": "1.5",
                       "currency": "CNY"}))  # fmt: skip
def test_fast_and_slow_paths_agree(raw: bytes | None) -> None:
    slow = _slow(raw)
    fast = V.fast(raw, WALL)
    if fast is not None:
        assert _good(slow), (raw, slow)
        assert fast == slow and type(fast) is type(slow)
    assert _via_event(raw) == slow
