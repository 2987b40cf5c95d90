"""The bad-input corpus: every way a POS message can be wrong, and the reason we give."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple

import orjson


class Case(NamedTuple):
    name: str
    raw: bytes
    error_class: str
    fragment: str  # must appear in the dead letter's message


def _event(now: datetime, n: int, **changes: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "event_id": f"bad-{n}",
        "customer_id": "c-bad",
        "order_id": f"o-bad-{n}",
        "occurred_at": now.isoformat(),
        "amount": "10.50",
        "currency": "CNY",
    }
    for k, v in changes.items():
        if v is _DROP:
            ev.pop(k)
        else:
            ev[k] = v
    return ev


_DROP = object()


def bad_inputs(now: datetime) -> list[Case]:
    def j(n: int, **changes: Any) -> bytes:
        return orjson.dumps(_event(now, n, **changes))

    return [
        Case("not json", b"{not json", "MalformedJSON", "not JSON"),
        Case("json array", b"[1, 2, 3]", "MalformedJSON", "JSON object"),
        Case("json string", b'"purchase"', "MalformedJSON", "JSON object"),
        Case("empty message", b"", "EmptyMessage", "no value"),
        Case("wrong shape", b'{"sku": "A1", "qty": 2}', "MissingField", "event_id"),
        Case("missing customer", j(1, customer_id=_DROP), "MissingField", "customer_id"),
        Case("extra field", j(2, coupon="X"), "UnexpectedField", "coupon"),
        Case("amount typed bool", j(3, amount=True), "InvalidAmount", "amount"),
        Case("customer typed int", j(4, customer_id=42), "InvalidId", "customer_id"),
        Case("zero amount", j(5, amount="0"), "InvalidAmount", "greater than 0"),
        Case("negative amount", j(6, amount="-5"), "InvalidAmount", "greater than 0"),
        Case("NaN amount", j(7, amount="NaN"), "InvalidAmount", "finite"),
        Case("infinite amount", j(8, amount="Infinity"), "InvalidAmount", "finite"),
        Case("absurd amount", j(9, amount="1e400"), "InvalidAmount", "amount"),
        Case("above the limit", j(10, amount="5000000"), "AmountTooLarge", "limit"),
        Case("5 decimals", j(11, amount="1.00001"), "InvalidAmount", "4 decimal places"),
        Case("3 decimals in CNY", j(12, amount="12.345"), "AmountPrecision", "CNY allows (2)"),
        Case(
            "naive timestamp",
            j(13, occurred_at="2026-03-01T10:00:00"),
            "InvalidTimestamp",
            "timezone",
        ),
        Case(
            "unparsable timestamp",
            j(14, occurred_at="yesterday"),
            "InvalidTimestamp",
            "occurred_at",
        ),
        Case("numeric timestamp", j(15, occurred_at=1767225600), "InvalidTimestamp", "ISO-8601"),
        Case(
            "far future",
            j(16, occurred_at=(now + timedelta(days=2)).isoformat()),
            "FutureEvent",
            "ahead",
        ),
        Case(
            "year 0001 (crash-looped the worker, issue #16)",
            b'{"event_id":"e1","customer_id":"c1","order_id":"o1","kind":"purchase",'
            b'"occurred_at":"0001-01-01T00:00:00+01:00","amount":"1","currency":"CNY"}',
            "EventTimeOutOfRange",
            "before 1970-01-01",
        ),
        Case(
            "year 1026",
            j(31, occurred_at="1026-03-01T10:00:00+08:00"),
            "EventTimeOutOfRange",
            "earliest event time",
        ),
        Case(
            "a millisecond before 1970",
            j(32, occurred_at="1969-12-31T23:59:59.999Z"),
            "EventTimeOutOfRange",
            "before 1970-01-01",
        ),
        Case(
            "year 9999",
            j(33, occurred_at="9999-12-31T23:59:59-23:59"),
            "EventTimeOutOfRange",
            "2200-01-01",
        ),
        Case("unknown currency", j(17, currency="XYZ"), "UnknownCurrency", "ISO 4217"),
        Case("lower-case currency", j(18, currency="cny"), "UnknownCurrency", "currency"),
        Case("other currency", j(19, currency="USD"), "CurrencyMismatch", "configured CNY"),
        Case("empty customer id", j(20, customer_id=""), "InvalidId", "customer_id"),
        Case("129-byte customer id", j(21, customer_id="x" * 129), "InvalidId", "128 bytes"),
        Case("130-byte utf-8 customer id", j(22, customer_id="é" * 65), "InvalidId", "128 bytes"),
        Case("control character id", j(23, customer_id="a\x00b"), "InvalidId", "control"),
        Case("whitespace id", j(24, customer_id="a b"), "InvalidId", "whitespace"),
        Case("hash-tag braces id", j(25, customer_id="{p0}"), "InvalidId", "braces"),
        Case("zero-width id", j(26, customer_id="a\u200bb"), "InvalidId", "printable"),
        Case("oversize message", j(27, channel="x" * 70_000), "MessageTooLarge", "65536"),
        Case("unknown kind", j(28, kind="gift"), "UnknownKind", "gift"),
        Case("refund without refund_of", j(29, kind="refund"), "MissingField", "refund_of"),
    ]


def hostile_inputs(now: datetime) -> list[Case]:
    """:func:`bad_inputs` and worse: bytes that aren't text, nesting deeper than any
    parser goes, thousands of fields, a 400-digit amount, leap seconds, nested values.
    All at most ``RFM_MAX_MESSAGE_BYTES``-ish (a dead letter's own size is another test's)."""

    def j(n: int, **changes: Any) -> bytes:
        return orjson.dumps(_event(now, n, **changes))

    many = _event(now, 50)
    many.update({f"f{i}": i for i in range(2000)})
    return [
        *bad_inputs(now),
        Case("not UTF-8", b'\xff\xfe{"event_id": "x"}', "MalformedJSON", "not JSON"),
        Case("NUL bytes", b"\x00" * 100, "MalformedJSON", "not JSON"),
        Case("JSON null", b"null", "MalformedJSON", "JSON object"),
        Case("nesting 30,000 deep", b"[" * 30_000 + b"]" * 30_000, "MalformedJSON", "not JSON"),
        Case("2,000 unknown fields", orjson.dumps(many), "UnexpectedField", "f0: Extra inputs"),
        Case("400-digit amount", j(51, amount="9" * 400), "InvalidAmount", "amount"),
        Case("tiny amount", j(52, amount="1e-400"), "InvalidAmount", "amount"),
        Case("nested amount", j(53, amount={"v": [1, {"w": None}]}), "InvalidAmount", "amount"),
        Case("nested id", j(54, customer_id={"id": ["c1"]}), "InvalidId", "customer_id"),
        Case(
            "leap second",
            j(55, occurred_at="2026-03-01T23:59:60+00:00"),
            "InvalidTimestamp",
            "occurred_at",
        ),
        Case(
            "year 0001 at the other end of the zones",
            j(56, occurred_at="0001-01-01T00:00:00-23:59"),
            "EventTimeOutOfRange",
            "before 1970-01-01",
        ),
        Case("channel of 10,000 chars", j(57, channel="频" * 10_000), "ValidationError", "channel"),
    ]
