"""Everything that makes a consumed message an event we apply, or a dead letter.

Schema checks live in the pydantic models (``schemas.events``); the checks here need
settings or the clock. Each rejection has a specific ``error_class`` (documented in
the README) and a message that names the field.
"""

from __future__ import annotations

from schemas.currencies import minor_units
from schemas.errors import InvalidEvent
from schemas.events import PurchaseEvent, RefundEvent, parse_event
from schemas.settings import Settings
from schemas.times import to_ms

__all__ = ["Validator"]


class Validator:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def check(self, value: bytes | None, wall_ms: int) -> PurchaseEvent | RefundEvent:
        s = self.settings
        if value is not None and len(value) > s.max_message_bytes:
            raise InvalidEvent(
                "MessageTooLarge",
                f"message is {len(value)} bytes; the limit is {s.max_message_bytes}",
            )
        ev = parse_event(value)
        places = minor_units(ev.currency)
        if places is None:
            raise InvalidEvent(
                "UnknownCurrency", f"currency: {ev.currency} is not an ISO 4217 currency code"
            )
        if ev.currency != s.currency:
            raise InvalidEvent(
                "CurrencyMismatch", f"currency: {ev.currency} is not the configured {s.currency}"
            )
        exponent = ev.amount.normalize().as_tuple().exponent
        if isinstance(exponent, int) and -exponent > places:
            raise InvalidEvent(
                "AmountPrecision",
                f"amount: {ev.amount} has more decimal places than {ev.currency} allows ({places})",
            )
        if ev.amount > s.max_amount:
            raise InvalidEvent(
                "AmountTooLarge", f"amount: {ev.amount} is above the limit of {s.max_amount}"
            )
        if to_ms(ev.occurred_at) > wall_ms + s.max_future_skew:
            raise InvalidEvent(
                "FutureEvent",
                f"occurred_at: {ev.occurred_at.isoformat()} is more than "
                f"{s.max_future_skew} ms ahead of the worker's clock",
            )
        return ev
