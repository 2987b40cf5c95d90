"""The day-numbered sections of the customer-state hash (:mod:`state.codec`, format v3).

Why a module of their own: the rolling-window days (sections 11-13) and the open win-back
returns (section 15) are the sections counted in days back from the cursor's day, and
they belong to features (windowed schemes, win-back) rather than to every customer: a
state without them writes none of these lines. The days are also the one section v3
writes by inference, leaving out every day the orders already say (:func:`order_days`),
so their writer and reader sit side by side and must agree exactly. :mod:`state.codec`
places these columns in the hash and reads them back; the format, section by section,
is documented there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import eq
from typing import cast

import orjson

from schemas.times import DAY_MS
from segments.windows import day_of
from state import codec_text as ct

__all__ = [
    "days_columns",
    "order_days",
    "read_days_columns",
    "read_returns_column",
    "returns_column",
]


def order_days(orders: Mapping[str, Sequence[int]]) -> dict[int, list[int]]:
    """Per day an order was placed on: [orders, remaining units]. What the window keeps
    for a day in the refund window is usually exactly this (an order counts on its
    day, a refund retracts from it), so v3 stores only the days that differ."""
    out: dict[int, list[int]] = {}
    for remaining, _, ms in orders.values():
        day = day_of(ms)
        bucket = out.get(day)
        if bucket is None:
            out[day] = [1, remaining]
        else:
            bucket[0] += 1
            bucket[1] += remaining
    return out


def days_columns(
    days: Mapping[int, Sequence[int]], orders: Mapping[str, Sequence[int]], base: int
) -> tuple[str, str, str]:
    """(day deltas, order counts, units): ``*`` first when the orders' days are all kept
    as the orders say (checked here, day by day, so the decoder can trust it); then
    only the other days, in day order."""
    implied = order_days(orders) if orders else {}
    mark = ""
    if implied and all(map(eq, map(days.get, implied), implied.values())):
        if len(implied) == len(days):
            return "*", "", ""  # every day kept is an order's (the common case)
        mark = "*"
        rest = sorted(days.keys() - implied.keys())
    else:
        rest = sorted(days)
    if not rest:
        return mark, "", ""
    counts, units = zip(*map(days.__getitem__, rest), strict=True)
    ones = counts.count(1) == len(counts)
    return (
        mark + ct.hex_deltas(rest, base),
        "" if ones else ct.hex_list(counts),
        ct.money_list(units),
    )


def read_days_columns(
    deltas: str, counts: str, units: str, orders: Mapping[str, Sequence[int]], base: int
) -> dict[int, list[int]]:
    out = {}
    if deltas[0] == "*":
        out = order_days(orders)
        deltas = deltas[1:]
    if deltas:
        day = ct.read_hex_deltas(deltas, base)
        n = list(map(int, counts.split(" "), ct.HEX)) if counts else [1] * len(day)
        rows = map(list, zip(n, ct.read_money_list(units), strict=True))
        out.update(zip(day, rows, strict=True))
    return out


def returns_column(returns: Sequence[Sequence[str | int]], cursor_ms: int) -> str:
    """Each open return as three tokens: scheme, entry day before the cursor's, return
    ms before the cursor (a cohort is a day, so the entry's day is all it needs)."""
    if not returns:
        return ""
    day = day_of(cursor_ms)
    try:
        return " ".join(
            f"{ct.name_token(str(s))} {day - day_of(int(e)):x} {cursor_ms - int(r):x}"
            for s, e, r in returns
        )
    except ct.Unsafe:
        return orjson.dumps([list(r) for r in returns]).decode()


def read_returns_column(raw: str, cursor_ms: int) -> list[list[str | int]]:
    if raw[0] == "[":
        return cast(list[list[str | int]], orjson.loads(raw))
    tok = raw.split(" ")
    day = day_of(cursor_ms)
    return [
        [ct.read_name_token(s), (day - int(e, 16)) * DAY_MS, cursor_ms - int(r, 16)]
        for s, e, r in zip(tok[::3], tok[1::3], tok[2::3], strict=True)
    ]
