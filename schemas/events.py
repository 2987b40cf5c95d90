"""Inbound POS events: the purchase/refund contract producers publish against.

``parse_event`` is the single entry point the stream uses: bytes in, a validated
model out, or :class:`InvalidEvent` carrying a reason fit for the dead-letter topic.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from schemas.errors import InvalidEvent
from schemas.money import to_units

__all__ = [
    "Identifier",
    "InvalidEvent",
    "PurchaseEvent",
    "RefundEvent",
    "parse_event",
]


def _identifier(value: str) -> str:
    if len(value.encode()) > 128:
        raise ValueError("must be at most 128 bytes (UTF-8)")
    if not value.isprintable() or any(c.isspace() or c in "{}" for c in value):
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


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    event_id: Identifier = Field(description="Unique per event, chosen by the producer.")
    customer_id: Identifier
    order_id: Identifier
    occurred_at: AwareDatetime = Field(
        description="When it happened at the till: timezone-aware ISO-8601."
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


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors(include_url=False):
        loc = ".".join(str(p) for p in e["loc"]) or "event"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def parse_event(raw: bytes | None) -> PurchaseEvent | RefundEvent:
    """Decode and validate one message value; raise :class:`InvalidEvent` if it isn't one."""
    if raw is None:
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
        raise InvalidEvent("ValidationError", _describe(exc)) from None
