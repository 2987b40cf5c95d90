"""Everything that makes a consumed message an event we apply, or a dead letter.

Schema checks live in the pydantic models (``schemas.events``); the checks here need
settings or the clock. Each rejection has a specific ``error_class`` (documented in
the README) and a message that names the field.

:meth:`Validator.event` is the hot path: a fast path (:meth:`Validator.fast`) accepts only
messages that are *certainly* valid (a strict subset of what the models and :meth:`check`
accept: canonical ISO-8601 times, plain decimal strings, ids without whitespace, no
unknown or null-where-absent keys) and builds the engine event from a msgspec struct
decoded straight from the bytes (:mod:`stream.apply.wire`); anything else, valid or not,
goes through the full pydantic path, which decides and words every rejection.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR

import msgspec

from schemas.currencies import minor_units
from schemas.errors import InvalidEvent
from schemas.events import PurchaseEvent, RefundEvent, parse_event
from schemas.money import MONEY_SCALE
from schemas.settings import Settings
from schemas.times import LATEST_MS, event_time_range_problem, to_ms
from segments.model import Event, Purchase, Refund
from stream.apply.messages import engine_event
from stream.apply.wire import amount_units, decoder, epoch_ms, plain_ids

__all__ = ["Validator"]


class Validator:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        places = minor_units(settings.currency)
        self._places = 0 if places is None else places
        self._currency = settings.currency if places is not None else None
        max_units = settings.max_amount * MONEY_SCALE
        self._max_units = int(max_units.to_integral_value(rounding=ROUND_FLOOR))
        self._max_bytes = settings.max_message_bytes
        self._skew = settings.max_future_skew
        self._earliest = to_ms(settings.earliest_event)
        self._decode = decoder().decode

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
        at = to_ms(ev.occurred_at)
        # the model refused times outside the contract's range; this is the settings floor
        if (problem := event_time_range_problem(at, self._earliest)) is not None:
            raise InvalidEvent(
                "EventTimeOutOfRange",
                f"occurred_at: {ev.occurred_at.isoformat()} {problem} (RFM_EARLIEST_EVENT)",
            )
        if at > wall_ms + s.max_future_skew:
            raise InvalidEvent(
                "FutureEvent",
                f"occurred_at: {ev.occurred_at.isoformat()} is more than "
                f"{s.max_future_skew} ms ahead of the worker's clock",
            )
        return ev

    def event(self, value: bytes | None, wall_ms: int) -> Event:
        """The engine event of a message (a refund's ``ref`` left empty), or
        :class:`InvalidEvent` exactly as :meth:`check` words it."""
        ev = self.fast(value, wall_ms)
        if ev is None:
            ev = engine_event(self.check(value, wall_ms))
        return ev

    def fast(self, value: bytes | None, wall_ms: int) -> Event | None:
        """The engine event of a certainly valid message; ``None``: ask :meth:`check`."""
        if not value or len(value) > self._max_bytes:
            return None
        try:
            w = self._decode(value)
        except msgspec.MsgspecError:  # malformed, or outside what the struct takes
            return None
        if w.currency != self._currency:
            return None
        refund_of = w.refund_of
        ids: tuple[str, ...] = (w.customer_id, w.event_id, w.order_id)
        if isinstance(refund_of, str):
            if w.kind != "refund":
                return None  # the purchase model has no refund_of
            ids += (refund_of,)
        elif w.kind != "purchase":
            return None  # a refund without refund_of
        if w.store_id is not None:
            ids += (w.store_id,)
        if not plain_ids("".join(ids), ids):
            return None
        units = amount_units(w.amount, self._places)
        if units is None or not 0 < units <= self._max_units:
            return None
        at = epoch_ms(w.occurred_at)
        if at is None or not self._earliest <= at < LATEST_MS or at > wall_ms + self._skew:
            return None
        if isinstance(refund_of, str):
            return Refund(w.customer_id, w.event_id, at, units, refund_of)
        return Purchase(w.customer_id, w.event_id, at, units, w.order_id)
