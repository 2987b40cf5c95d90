"""Everything that makes a consumed message an event we apply, or a dead letter.

Schema checks live in the pydantic models (``schemas.events``); the checks here need
settings or the clock. Each rejection has a specific ``error_class`` (documented in
the README) and a message that names the field.

:meth:`Validator.event` is the hot path: a plain-Python fast path accepts only messages
that are *certainly* valid (a strict subset of what the models and :meth:`check`
accept: canonical ISO-8601 times, plain decimal strings, ids without whitespace) and
builds the engine event straight from the decoded JSON; anything else, valid or not,
goes through the full pydantic path, which decides and words every rejection.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import ROUND_FLOOR
from functools import lru_cache

import orjson

from schemas.currencies import minor_units
from schemas.errors import InvalidEvent
from schemas.events import PurchaseEvent, RefundEvent, parse_event
from schemas.money import MONEY_SCALE
from schemas.settings import Settings
from schemas.times import to_ms
from segments.model import Event, Purchase, Refund
from stream.messages import engine_event

__all__ = ["Validator"]

_NOT_IN_ID = re.compile(r"[\s{}]")
# what the fast path takes: anything else is left to pydantic
_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?:(Z)|([+-])(\d{2}):(\d{2}))"
)
_AMOUNT = re.compile(r"([0-9]{1,12})(?:\.([0-9]{1,4}))?")
_PURCHASE_KEYS = frozenset(
    {"event_id", "customer_id", "order_id", "occurred_at", "amount", "currency", "kind"}
    | {"store_id", "channel"}
)
_REFUND_KEYS = _PURCHASE_KEYS | {"refund_of"}
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@lru_cache(maxsize=4096)
def _epoch_day(text: str) -> int | None:
    """Days since 1970-01-01 of a ``YYYY-MM-DD`` date in the fast path's year range."""
    y, m, d = int(text[0:4]), int(text[5:7]), int(text[8:10])
    if not 1900 <= y <= 2199:
        return None
    try:
        return date(y, m, d).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None


def _plain_id(value: object) -> bool:
    """Certainly a valid :data:`schemas.events.Identifier`, unchanged by stripping."""
    return (
        type(value) is str
        and 0 < len(value) <= 128
        and (len(value) <= 32 or len(value.encode()) <= 128)
        and value.isprintable()
        and _NOT_IN_ID.search(value) is None
    )


class Validator:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        places = minor_units(settings.currency)
        self._places = -1 if places is None else places
        max_units = settings.max_amount * MONEY_SCALE
        self._max_units = int(max_units.to_integral_value(rounding=ROUND_FLOOR))
        self._max_bytes = settings.max_message_bytes
        self._skew = settings.max_future_skew

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
            data = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
        if type(data) is not dict:
            return None
        kind = data.get("kind", "purchase")
        if kind == "purchase":
            if not data.keys() <= _PURCHASE_KEYS:
                return None
        elif kind == "refund":
            if not data.keys() <= _REFUND_KEYS or not _plain_id(data.get("refund_of")):
                return None
        else:
            return None
        customer_id = data.get("customer_id")
        event_id = data.get("event_id")
        order_id = data.get("order_id")
        if not (_plain_id(customer_id) and _plain_id(event_id) and _plain_id(order_id)):
            return None
        store_id = data.get("store_id")
        if store_id is not None and not _plain_id(store_id):
            return None
        channel = data.get("channel")
        if channel is not None and not (type(channel) is str and len(channel) <= 64):
            return None
        if data.get("currency") != self.settings.currency or self._places < 0:
            return None
        amount = data.get("amount")
        if type(amount) is not str or (a := _AMOUNT.fullmatch(amount)) is None:
            return None
        whole, frac = a.groups()
        if frac is not None and len(frac) > self._places:
            return None
        units = int(whole) * MONEY_SCALE + (int(frac.ljust(4, "0")) if frac else 0)
        if not 0 < units <= self._max_units:
            return None
        at = data.get("occurred_at")
        if type(at) is not str or (t := _TIME.fullmatch(at)) is None:
            return None
        day, hh, mm, ss, us, zulu, sign, oh, om = t.groups()
        days = _epoch_day(day)
        hour, minute, second = int(hh), int(mm), int(ss)
        if days is None or hour > 23 or minute > 59 or second > 59:
            return None
        offset = 0
        if zulu is None:
            off_h, off_m = int(oh), int(om)
            if off_h > 18 or off_m > 59:
                return None
            offset = (off_h * 60 + off_m) * 60 if sign == "+" else -(off_h * 60 + off_m) * 60
        micros = (days * 86_400 + hour * 3600 + minute * 60 + second - offset) * 1_000_000
        if us:
            micros += int(us.ljust(6, "0"))
        occurred_ms = micros // 1000
        if occurred_ms > wall_ms + self._skew:
            return None
        if kind == "refund":
            return Refund(customer_id, event_id, occurred_ms, units, data["refund_of"])
        return Purchase(customer_id, event_id, occurred_ms, units, order_id)
