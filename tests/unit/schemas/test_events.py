"""Parsing and validating POS events; every rejection names its reason."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from schemas import InvalidEvent, PurchaseEvent, RefundEvent, parse_event
from schemas.money import from_units, to_units
from schemas.times import from_ms, to_ms

GOOD = {
    "event_id": "e1",
    "customer_id": "c1",
    "order_id": "o1",
    "occurred_at": "2026-03-01T10:00:00+08:00",
    "amount": "199.90",
    "currency": "CNY",
    "store_id": "s01",
    "channel": "pos",
}


def test_valid_purchase() -> None:
    ev = parse_event(orjson.dumps(GOOD))
    assert isinstance(ev, PurchaseEvent)
    assert ev.amount == Decimal("199.90")
    assert to_ms(ev.occurred_at) == to_ms(from_ms(to_ms(ev.occurred_at)))


def test_valid_refund_model() -> None:
    ev = parse_event(orjson.dumps({**GOOD, "kind": "refund", "refund_of": "o0"}))
    assert isinstance(ev, RefundEvent)


@pytest.mark.parametrize(
    ("raw", "error_class", "fragment"),
    [
        (b"{not json", "MalformedJSON", "not JSON"),
        (b"[1, 2]", "MalformedJSON", "JSON object"),
        (None, "EmptyMessage", "no value"),
        (orjson.dumps({**GOOD, "kind": "gift"}), "UnknownKind", "gift"),
        (orjson.dumps({**GOOD, "amount": "-5"}), "InvalidAmount", "amount"),
        (orjson.dumps({**GOOD, "amount": "0"}), "InvalidAmount", "amount"),
        (orjson.dumps({**GOOD, "amount": "1.00001"}), "InvalidAmount", "4 decimal places"),
        (
            orjson.dumps({**GOOD, "occurred_at": "2026-03-01T10:00:00"}),
            "InvalidTimestamp",
            "occurred_at",
        ),
        (orjson.dumps({**GOOD, "currency": "yuan"}), "UnknownCurrency", "currency"),
        (
            orjson.dumps({k: v for k, v in GOOD.items() if k != "customer_id"}),
            "MissingField",
            "customer_id",
        ),
        (orjson.dumps({**GOOD, "customer_id": "a b"}), "InvalidId", "customer_id"),
        (orjson.dumps({**GOOD, "customer_id": "{x}"}), "InvalidId", "customer_id"),
        (orjson.dumps({**GOOD, "surprise": 1}), "UnexpectedField", "surprise"),
        (orjson.dumps({**GOOD, "kind": "refund"}), "MissingField", "refund_of"),
    ],
)
def test_invalid_events_say_why(raw: bytes | None, error_class: str, fragment: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(raw)
    assert info.value.error_class == error_class
    assert fragment in info.value.message


def test_money_round_trip_is_exact() -> None:
    for text in ["0.0001", "1", "199.9", "123456789.1234"]:
        assert from_units(to_units(Decimal(text))) == Decimal(text)
    assert str(from_units(1_999_000)) == "199.9"
    assert str(from_units(10_000)) == "1"


def test_naive_datetimes_are_refused_by_the_clock_helpers() -> None:
    from datetime import datetime

    with pytest.raises(ValueError, match="naive"):
        to_ms(datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test
