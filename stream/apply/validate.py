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

import orjson

from schemas.currencies import minor_units
from schemas.errors import InvalidEvent
from schemas.events import PurchaseEvent, RefundEvent, parse_event
from schemas.money import MONEY_SCALE
from schemas.settings import Settings
from schemas.times import LATEST_MS, event_time_range_problem, to_ms
from segments.model import Event, Purchase, Refund
from stream.apply.messages import engine_event

__all__ = ["Validator"]

_NOT_IN_ID = re.compile(r"[\s{}]")
# what the fast path takes: anything else is left to pydantic
_TIME = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_AMOUNT = re.compile(r"([0-9]{1,12})(?:\.([0-9]{1,4}))?")
_FRACTION_SCALE = {n: 10 ** (4 - n) for n in range(1, 5)}
_MICRO_SCALE = {n: 10 ** (6 - n) for n in range(1, 7)}
_PURCHASE_KEYS = frozenset(
    {"event_id", "customer_id", "order_id", "occurred_at", "amount", "currency", "kind"}
    | {"store_id", "channel"}
)
_REFUND_KEYS = _PURCHASE_KEYS | {"refund_of"}
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAYS: dict[str, int] = {}
_ZONES: dict[str, int] = {}


def _epoch_day(text: str) -> int | None:
    """Days since 1970-01-01 of a ``YYYY-MM-DD`` date in the fast path's year range
    (remembered: a stream's events share few dates)."""
    y, m, d = int(text[0:4]), int(text[5:7]), int(text[8:10])
    if not 1900 <= y <= 2199:
        return None
    try:
        days = date(y, m, d).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None
    if len(_DAYS) < 200_000:
        _DAYS[text] = days
    return days


def _zone_seconds(zone: str) -> int | None:
    """Seconds east of UTC of ``Z`` or ``±HH:MM`` (at most 18 h), remembered."""
    if zone == "Z":
        seconds = 0
    else:
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 18 or minutes > 59:
            return None
        seconds = (hours * 60 + minutes) * 60 * (1 if zone[0] == "+" else -1)
    _ZONES[zone] = seconds
    return seconds


def _plain_ids(ids: list[str]) -> bool:
    """Each certainly a valid :data:`schemas.events.Identifier`, unchanged by stripping
    (printable, no whitespace: nothing to strip)."""
    for i in ids:
        if not 0 < len(i) <= 32 and not (len(i) > 0 and len(i.encode()) <= 128):
            return False
    joined = "".join(ids)
    return joined.isprintable() and _NOT_IN_ID.search(joined) is None


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
            data = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
        if type(data) is not dict:
            return None
        get = data.get
        kind = get("kind", "purchase")
        customer_id, event_id, order_id = get("customer_id"), get("event_id"), get("order_id")
        if not (type(customer_id) is str and type(event_id) is str and type(order_id) is str):
            return None
        ids = [customer_id, event_id, order_id]
        if kind == "purchase":
            if not data.keys() <= _PURCHASE_KEYS:
                return None
            refund_of = None
        elif kind == "refund":
            refund_of = get("refund_of")
            if type(refund_of) is not str or not data.keys() <= _REFUND_KEYS:
                return None
            ids.append(refund_of)
        else:
            return None
        store_id = get("store_id")
        if store_id is not None:
            if type(store_id) is not str:
                return None
            ids.append(store_id)
        if not _plain_ids(ids):
            return None
        channel = get("channel")
        if channel is not None and not (type(channel) is str and len(channel) <= 64):
            return None
        if get("currency") != self._currency:
            return None
        amount = get("amount")
        if type(amount) is not str or (a := _AMOUNT.fullmatch(amount)) is None:
            return None
        whole, frac = a.groups()
        if frac is None:
            units = int(whole) * MONEY_SCALE
        elif len(frac) > self._places:
            return None
        else:
            units = int(whole) * MONEY_SCALE + int(frac) * _FRACTION_SCALE[len(frac)]
        if not 0 < units <= self._max_units:
            return None
        at = get("occurred_at")
        if type(at) is not str or (t := _TIME.fullmatch(at)) is None:
            return None
        day, hh, mm, ss, us, zone = t.groups()
        days = _DAYS.get(day)
        if days is None:
            days = _epoch_day(day)
            if days is None:
                return None
        offset = _ZONES.get(zone)
        if offset is None:
            offset = _zone_seconds(zone)
            if offset is None:
                return None
        hour, minute, second = int(hh), int(mm), int(ss)
        if hour > 23 or minute > 59 or second > 59:
            return None
        seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset
        occurred_ms = seconds * 1000 + (int(us) * _MICRO_SCALE[len(us)] // 1000 if us else 0)
        if not self._earliest <= occurred_ms < LATEST_MS or occurred_ms > wall_ms + self._skew:
            return None
        if refund_of is not None:
            return Refund(customer_id, event_id, occurred_ms, units, refund_of)
        return Purchase(customer_id, event_id, occurred_ms, units, order_id)
