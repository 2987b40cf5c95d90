"""Inbound POS events: the purchase/refund contract producers publish against.

``parse_event`` is the single entry point the stream uses: bytes in, a validated
model out, or :class:`InvalidEvent` carrying a reason fit for the dead-letter topic.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from schemas.errors import InvalidEvent
from schemas.money import to_units
from schemas.times import EARLIEST_EVENT, LATEST_EVENT, event_time_range_problem, to_ms

__all__ = [
    "Identifier",
    "InvalidEvent",
    "PurchaseEvent",
    "RefundEvent",
    "parse_event",
]


_NOT_IN_ID = re.compile(r"[\s{}]")


def _identifier(value: str) -> str:
    # hot path (every id of every event): C-level checks only
    if len(value) > 32 and len(value.encode()) > 128:
        raise ValueError("must be at most 128 bytes (UTF-8)")
    if not value.isprintable() or _NOT_IN_ID.search(value):
        raise ValueError("must be printable, without whitespace, control characters or braces")
    return value


Identifier = Annotated[str, StringConstraints(min_length=1), AfterValidator(_identifier)]
"""Ids are opaque but printable: at most 128 bytes, no whitespace or control characters,
no braces (braces are Redis hash tags). They become parts of Redis keys."""


def _four_places(value: Decimal) -> Decimal:
    to_units(value)  # raises ValueError past 4 decimal places
    return value


Amount = Annotated[
    Decimal,
    Field(gt=0, lt=10**12, description="Positive decimal, at most 4 decimal places."),
    AfterValidator(_four_places),
]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


def _iso_text(value: object) -> object:
    # a bare number would be taken as a Unix timestamp: require ISO-8601 text
    if not isinstance(value, str):
        raise ValueError(  # noqa: TRY004 - pydantic reports ValueError, not TypeError
            "must be an ISO-8601 string with a timezone, e.g. 2026-03-01T10:00:00+08:00"
        )
    return value


_OUT_OF_RANGE = "event_time_out_of_range"


def _in_range(value: datetime) -> datetime:
    # pydantic parses any year 1-9999; the stream holds times as epoch ms and writes them
    # back as dates, which years like 0001 or 9999 (shifted by a zone) can't survive
    problem = event_time_range_problem(to_ms(value))
    if problem is not None:
        raise PydanticCustomError(
            _OUT_OF_RANGE, "{time} {problem}", {"time": value.isoformat(), "problem": problem}
        )
    return value


EventTime = Annotated[AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_in_range)]


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    event_id: Identifier = Field(description="Unique per event, chosen by the producer.")
    customer_id: Identifier
    order_id: Identifier
    occurred_at: EventTime = Field(
        description="When it happened at the till: timezone-aware ISO-8601, from "
        f"{EARLIEST_EVENT.isoformat()} (inclusive) to {LATEST_EVENT.isoformat()} (exclusive)."
    )
    amount: Amount
    currency: Currency = Field(description="ISO 4217 code, e.g. CNY.")
    store_id: Identifier | None = None
    channel: Annotated[str, StringConstraints(max_length=64)] | None = None


class PurchaseEvent(_Event):
    """A completed sale. Key the Kafka message by ``customer_id``."""

    kind: Literal["purchase"] = "purchase"


class RefundEvent(_Event):
    """Money returned against an earlier order (``refund_of``).

    ``amount`` may not exceed what the order still holds; the state layer checks that.
    """

    kind: Literal["refund"]
    refund_of: Identifier = Field(description="order_id of the purchase being refunded.")


_ID_FIELDS = frozenset({"event_id", "customer_id", "order_id", "store_id", "refund_of"})


def _describe(err: ValidationError) -> tuple[str, str]:
    """(error class, message naming every bad field) of a pydantic validation error."""
    errors = err.errors(include_url=False)
    parts = []
    for e in errors:
        loc = ".".join(str(p) for p in e["loc"]) or "event"
        parts.append(f"{loc}: {e['msg'].removeprefix('Value error, ')}")
    first = errors[0]
    field = str(first["loc"][0]) if first["loc"] else ""
    if first["type"] == "missing":
        cls = "MissingField"
    elif first["type"] == "extra_forbidden":
        cls = "UnexpectedField"
    elif field == "amount":
        cls = "InvalidAmount"
    elif first["type"] == _OUT_OF_RANGE:
        cls = "EventTimeOutOfRange"
    elif field == "occurred_at":
        cls = "InvalidTimestamp"
    elif field == "currency":
        cls = "UnknownCurrency"
    elif field in _ID_FIELDS:
        cls = "InvalidId"
    else:
        cls = "ValidationError"
    return cls, "; ".join(parts)


def parse_event(raw: bytes | None) -> PurchaseEvent | RefundEvent:
    """Decode and validate one message value; raise :class:`InvalidEvent` if it isn't one."""
    if not raw:
        raise InvalidEvent("EmptyMessage", "message has no value")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("MalformedJSON", f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidEvent("MalformedJSON", f"expected a JSON object, got {type(data).__name__}")
    kind = data.get("kind", "purchase")
    model: type[PurchaseEvent] | type[RefundEvent]
    if kind == "purchase":
        model = PurchaseEvent
    elif kind == "refund":
        model = RefundEvent
    else:
        raise InvalidEvent("UnknownKind", f"kind: must be 'purchase' or 'refund', got {kind!r}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidEvent(*_describe(exc)) from None
