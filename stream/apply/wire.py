"""The accept path's reading of a message: msgspec decodes the raw bytes straight into a
typed :class:`Wire` struct (in C: no dict, no per-key lookups), and the helpers here turn
its text fields into the engine's integers.

Why msgspec and not the orjson dict the pydantic path reads: the dict, its ``get``s, the
type and key checks were most of the per-event cost of the hand-written fast path
(issue #21). The struct's declaration *is* those checks: every field a string (a number,
null or list where text belongs fails the decode), no key outside the contract
(``forbid_unknown_fields``), ids of 1..128 characters and a channel of at most 64, like the
models'. What a decode refuses is not an error: the validator then asks pydantic, which
decides and words every rejection. So this module may only ever be *stricter* than
:mod:`schemas.events`; its property test (tests/unit/stream/apply/test_validate_wire.py)
checks both agree on everything this accepts.

Nothing here is a float: amounts and times become integers digit by digit.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec

__all__ = [
    "Wire",
    "amount_units",
    "decoder",
    "epoch_ms",
    "plain_ids",
]

_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
_Channel = Annotated[str, msgspec.Meta(max_length=64)]


class Wire(msgspec.Struct, forbid_unknown_fields=True, frozen=True, gc=False):
    """A purchase or refund message as it arrives, before the checks that need settings.

    Field for field the contract of :mod:`schemas.events`, a little stricter: ``kind``
    absent means a purchase, as there; ``refund_of`` may be absent (``UNSET``) but not
    null (a null fails the decode: the purchase model refuses any ``refund_of`` key, null
    or not); ``store_id`` and ``channel`` may be null, as there.
    """

    event_id: _Id
    customer_id: _Id
    order_id: _Id
    occurred_at: str
    amount: str
    currency: str
    kind: Literal["purchase", "refund"] = "purchase"
    store_id: _Id | None = None
    channel: _Channel | None = None
    refund_of: _Id | msgspec.UnsetType = msgspec.UNSET


def decoder() -> msgspec.json.Decoder[Wire]:
    """A JSON decoder of :class:`Wire` (one per validator: a decoder keeps no state)."""
    return msgspec.json.Decoder(Wire)


def plain_ids(joined: str, ids: tuple[str, ...]) -> bool:
    """Whether ids (``joined``: their concatenation) are each certainly a valid
    :data:`schemas.events.Identifier`, unchanged by the model's stripping.

    Printable and without space or braces: ``str.isprintable`` already refuses every
    whitespace character but the ASCII space (checked over all of Unicode by the tests),
    so three ``in`` tests do what the model's regex search does. At most 128 UTF-8 bytes
    each: the struct allowed 128 characters, which only non-ASCII text can make longer.
    """
    if not joined.isprintable() or " " in joined or "{" in joined or "}" in joined:
        return False
    if not joined.isascii():
        for i in ids:
            if len(i) > 32 and len(i.encode()) > 128:
                return False
    return True


_SCALE_BY_PLACES: dict[int, int] = {n: 10 ** (4 - n) for n in range(5)}


def amount_units(amount: str, places: int) -> int | None:
    """``amount`` in units of 1/10 000 (:data:`schemas.money.MONEY_SCALE`) if it is a plain
    decimal (ASCII digits, at most 12 before the point and ``places`` ≤ 4 after it, no
    sign, exponent or spaces); else None. One ``int`` of the digits, scaled by a power of
    ten: exact, and cheaper than two."""
    whole, dot, frac = amount.partition(".")
    if not (
        amount.isascii()
        and whole.isdigit()
        and len(whole) <= 12
        and len(frac) <= places
        and (frac.isdigit() or not dot)
    ):
        return None
    return int(whole + frac) * _SCALE_BY_PLACES[len(frac)]


# The canonical ISO-8601 form only, its fields in range (years 1900-2199, zones up to
# ±18:59): what the gate passes, `datetime.fromisoformat` reads exactly as pydantic does.
# Anything else (a space, 't' or 'z', no seconds, more than six fraction digits, '+0800',
# 24:00, a leap second) is left to pydantic, which knows every form it takes.
_TIME = re.compile(
    r"(?:19|20|21)[0-9]{2}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(?:\.[0-9]{1,6})?(?:Z|[+-](?:0[0-9]|1[0-8]):[0-5][0-9])"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_from_iso = datetime.fromisoformat


def epoch_ms(text: str) -> int | None:
    """Epoch ms of a canonical ISO-8601 time with a zone (sub-millisecond digits cut
    toward the past, as :func:`schemas.times.to_ms` does), or None for any other text.

    The gate is one regex match; the reading is C (``fromisoformat``, which also refuses
    days a month doesn't have)."""
    if _TIME.fullmatch(text) is None:
        return None
    try:
        delta = _from_iso(text) - _EPOCH
    except ValueError:
        return None
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
