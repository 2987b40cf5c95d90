"""CustomerState <-> Redis hash, format v3: one field of hex deltas and one-char name codes.

Why this shape: at a million customers the customer hashes are most of Redis's memory.
v1 (:mod:`state.codec_v1`) spent ~450 bytes of text on a typical customer: a field per
scalar (each field costs its name and a few bytes of listpack framing), 13-digit times,
JSON orders, names spelled out. v2 (:mod:`state.codec_v2`) spent under half that, in one
field, and decodes with ``split``, ``map(int)`` and ``accumulate`` rather than
per-character work. v3 (issue #20: 400 bytes a customer with every shipped scheme)
writes the rolling-window days (kept for a year by the shipped pyramid: ~5 days, ~107
bytes of JSON a customer in v2) as hex columns, leaving out the days the orders already
say; writes each of the state's distinct times once (an event's time is its digest's,
its order's and its transitions'), the time columns holding one index character per
time; and runs the segment codes together.

The hash holds field ``a`` (continued in ``+1``, ``+2``, ... only when longer than
:data:`CHUNK`, so every value stays under ``hash-max-listpack-value`` and the hash a
listpack) and ``u``, the customer's due time, which only the commit script reads and
writes (:mod:`state.schedule`). ``a`` is fourteen sections joined by newlines (trailing
empty ones left out); each list is stored as columns, so both directions are a few
C-level passes (join, ``%``-format, split, ``map(int)``, ``accumulate``):

 0  core: f, m (money, see ``codec_text.money``), c, c-l, l-fs ('' before a first
    purchase), the stamp (see ``codec_text.stamp_token``), then the (scheme, segment)
    codes run together, or a token per name, space-separated, when a name has no
    one-character code
 1  history codes: four characters per transition (scheme, from, to, cause), run
    together; or ``~`` and four space-separated tokens each when a name has no code
 2  history times (see "times" below)
 3  dedupe digests, run together (each is 12 characters)
 4  dedupe times
 5  order ids ("~" + the rest when one starts with the customer id)
 6  order amounts in hundredths of a unit, or "." then in units
 7  order times
 8  refunds so far: (order index, amount) pairs, only for orders with some
 9  refunds held for their purchase (rare): JSON
10  the time table: the distinct times of sections 2, 4 and 7, in order, as deltas
11  rolling-window days (only with windows): day number deltas from the cursor's day,
    after ``*`` when every day an order in section 5 falls on is a day kept with the
    orders' count and remaining units (those days are then not written: see
    :func:`state.codec_days.days_columns`)
12  the days' order counts ('' when every one is 1)
13  the days' units, as order amounts
14  the CLV as of the last evaluation, hex cents (only while a value model is on)
15  open win-back returns: (scheme, entry day, return time) triples, space-separated:
    the scheme's token, the cursor's day less the entry's day, ``c`` less the return's
    ms, in hex

Sections 14 and 15 are optional: a hash written before them (or a customer with neither)
has no such line, which reads as no CLV and no open return, so old v3 and v2 hashes load
unchanged and a state without them costs no byte more.

The day-numbered sections (11-13 and 15) are written and read by :mod:`state.codec_days`;
the text primitives every section is made of are :mod:`state.codec_text`'s.

Numbers are hex; a list's first time is stored as ``c - t``, each next one as ``t -
previous`` (lists are in time order, so these are short): the time table so, and the
day numbers with the cursor's day for ``c``. Times: with a table (at most 36 distinct
times), sections 2, 4 and 7 hold one character per time, its index in the table
(``0-9a-z``); without (a heavy customer, or no times), each holds its own deltas as
above. A name is its code from
:mod:`state.names` or itself (quoted with a leading ``'`` when one character long or
starting with a marker); history spelled out starts with ``~``. A name with a space
or a control character (or an order id with one of ``'~[{``) sends its list to JSON,
which starts with ``[`` or ``{``.

Which format a hash holds: a hash with ``f`` was last written by a v1 writer (an old
worker during a rolling upgrade) and is read as v1. v2 wrote ``a`` too, and this reader
reads it as it is: its segment tokens are always space-separated, its times are deltas
and its section 10 is the days as JSON (``{``), where v3 has the time table (never
``{``), so a namespace written by v2 loads unchanged
and each customer's hash is rewritten as v3 by its next commit. (A v2 reader fails
loudly on a v3 hash rather than misreading it: upgrade readers before writers.)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache, partial
from itertools import chain
from operator import itemgetter
from typing import cast

import orjson

from segments.model import CustomerState, HeldRefund
from segments.windows import day_of
from state import codec_text as ct
from state.codec_days import days_columns, read_days_columns, read_returns_column, returns_column
from state.codec_v1 import CAUSE_CODE, CODE_CAUSE, decode_v1
from state.names import CODE, NAME

__all__ = ["CHUNK", "MAX_FIELDS", "decode_state", "encode_state"]


CHUNK = 1000
"""Longest value written (ASCII characters; a quarter of it for other text), below the
``hash-max-listpack-value`` of 1024 every server here is given (``state.store``)."""

MAX_FIELDS = 4096
"""Most fields one state may take (``a`` and its continuations: ~4 MB of text). What a
customer's state can hold is bounded far below that (:mod:`segments.limits`); this is the
backstop: the store and the commit script refuse a larger state before writing anything."""

_ODD = re.compile(r"['~\[{\n]")  # order ids with these go to JSON (they mark things)
_FOUR = re.compile(".{4}", re.DOTALL)
_TWELVE = re.compile(".{12}", re.DOTALL)
_SECTIONS = 16
_INDEX = "0123456789abcdefghijklmnopqrstuvwxyz"  # a time's one-character index in the table

_AT2, _AT4 = itemgetter(2), itemgetter(4)  # an order's time, a transition's

_Read = Callable[[str], list[int]]
"""Reads a column of times back."""


# ---------------------------------------------------------------------- sections
def _core(s: CustomerState) -> str:
    c, last, m = s.cursor_ms, s.last_ms, s.monetary
    first = "" if s.first_ms is None else f"{last - s.first_ms:x}"
    try:
        tail = ct.segments_tail(s.stamp, tuple(s.segments.items()))
    except ct.Unsafe:
        doc = [s.frequency, m, s.first_ms, last, c, s.stamp, list(s.segments.items())]
        return orjson.dumps(doc).decode()
    return f"{s.frequency:x} {ct.money(m)} {c:x} {c - last:x} {first} {tail}"


def _read_core(raw: str) -> tuple[int, int, int | None, int, int, str, dict[str, str]]:
    if raw[0] == "[":
        f, m, first, last, c, stamp, segs = orjson.loads(raw)
        return f, m, first, last, c, stamp, dict(segs)
    f, m, c, cl, lf, tail = raw.split(" ", 5)
    c = int(c, 16)
    last = c - int(cl, 16)
    stamp, segments = ct.read_segments_tail(tail)
    return (
        int(f, 16),
        ct.read_money(m),
        last - int(lf, 16) if lf else None,
        last,
        c,
        stamp,
        dict(segments),
    )


@lru_cache(maxsize=4096)
def _entry_code(scheme: str, frm: str, to: str, cause: str) -> str | None:
    a, b, c = CODE.get(scheme), CODE.get(frm), CODE.get(to)
    return None if a is None or b is None or c is None else a + b + c + CAUSE_CODE[cause]


@lru_cache(maxsize=4096)
def _entry(code: str) -> tuple[str, str, str, str]:
    return NAME[code[0]], NAME[code[1]], NAME[code[2]], CODE_CAUSE[code[3]]


# Each list is written as columns (sections of its own), so that both directions are a
# few C-level passes (join, split, map, accumulate) instead of Python work per item.


_Texts = tuple[str, ...]
_HistoryColumns = tuple[_Texts, _Texts, _Texts, _Texts, tuple[int, ...]]
"""A history as columns: schemes, from and to segments, causes, effective times."""


def _history(history: Sequence[Sequence[str | int]], deltas: str) -> tuple[str, str]:
    """(codes, times): four code characters per entry, run together; ``deltas`` is the
    times column, written by :func:`_time_columns`."""
    # an entry is [scheme, from, to, cause, effective ms] (CustomerState.history)
    schemes, frms, tos, causes, _ = cast(_HistoryColumns, zip(*history, strict=True))
    codes = map(_entry_code, schemes, frms, tos, causes)
    try:
        return "".join(codes), deltas  # type: ignore[arg-type]  # None (no code): TypeError
    except TypeError:  # a name without a code (None): spelled out below
        pass
    try:  # "~" and four space-separated tokens per entry
        names = map(ct.name_token, chain.from_iterable(zip(schemes, frms, tos, strict=True)))
        spelled = [
            f"{a} {b} {c} {CAUSE_CODE[d]}"
            for (a, b, c), d in zip(_triples(names), causes, strict=True)
        ]
    except ct.Unsafe:
        return orjson.dumps([list(h) for h in history]).decode(), ""
    return "~ " + " ".join(spelled), deltas


def _triples(it: Iterable[str]) -> Iterable[tuple[str, str, str]]:
    i = iter(it)
    return zip(i, i, i, strict=True)


def _read_history(codes: str, deltas: str, when: _Read) -> list[list[str | int]]:
    if codes[0] == "[":
        return cast(list[list[str | int]], orjson.loads(codes))
    times = zip(when(deltas))
    names: Iterable[tuple[str, str, str, str]]
    if codes[0] == "~":
        tok = codes.split(" ")[1:]
        names = zip(
            map(ct.read_name_token, tok[::4]),
            map(ct.read_name_token, tok[1::4]),
            map(ct.read_name_token, tok[2::4]),
            map(CODE_CAUSE.__getitem__, tok[3::4]),
            strict=True,
        )
    else:
        names = map(_entry, _FOUR.findall(codes))
    rows = map(tuple.__add__, names, times)  # (scheme, from, to, cause, effective ms)
    return list(map(list, rows))  # type: ignore[arg-type]  # tuple.__add__ -> tuple[object, ...]


def _dedupe(seen: Mapping[str, int], times: str) -> tuple[str, str]:
    """(digests run together, time deltas): a digest is always 12 characters."""
    digests = "".join(seen)
    if len(digests) != 12 * len(seen) or not digests.isprintable() or digests[0] == "[":
        return orjson.dumps(list(seen.items())).decode(), ""
    return digests, times


def _read_dedupe(digests: str, deltas: str, when: _Read) -> dict[str, int]:
    if digests[0] == "[":
        return dict(orjson.loads(digests))
    if len(digests) == 12:
        return {digests: when(deltas)[0]}
    return dict(zip(_TWELVE.findall(digests), when(deltas), strict=True))


def _orders(orders: Mapping[str, Sequence[int]], customer_id: str, times: str) -> tuple[str, ...]:
    """(ids, amounts, times, refunds): ids space-separated, "~" for the customer's
    own id prefix; amounts in hundredths unless the column starts with "."; refunds only
    for orders with some: index and amount refunded, in pairs."""
    ids = " ".join(orders)
    if (
        ids.count(" ") != len(orders) - 1  # an id with a space
        or "" in orders
        or _ODD.search(ids)
    ):
        return (orjson.dumps(orders).decode(), "", "", "")
    if customer_id and " " not in customer_id:
        ids = f" {ids}".replace(f" {customer_id}", " ~")[1:]
    remaining, amount, _ = zip(*orders.values(), strict=True)
    amounts = ct.money_list(amount)
    refunds = ""
    if remaining != amount:
        pairs = zip(amount, remaining, strict=True)
        refunds = " ".join(f"{i:x} {a - r:x}" for i, (a, r) in enumerate(pairs) if a != r)
    return ids, amounts, times, refunds


def _read_orders(
    ids: str, amounts: str, deltas: str, refunds: str, customer_id: str, when: _Read
) -> dict[str, list[int]]:
    if ids[0] == "{":
        return cast(dict[str, list[int]], orjson.loads(ids))
    if "~" in ids:
        ids = f" {ids}".replace(" ~", f" {customer_id}")[1:]
    amount = ct.read_money_list(amounts)
    rows = list(map(list, zip(amount, amount, when(deltas), strict=True)))
    if refunds:
        tok = refunds.split(" ")
        for i, r in zip(tok[::2], tok[1::2], strict=True):
            rows[int(i, 16)][0] -= int(r, 16)
    return dict(zip(ids.split(" "), rows, strict=True))


def _time_columns(s: CustomerState) -> tuple[str, str, str, str]:
    """(the time table, the history's, the dedupe window's and the orders' time columns).

    The state's distinct times are written once, as hex deltas (the table), and each
    column holds one index character per time: they repeat (an event's time is its
    digest's, its order's and its transitions': ~10 times a customer, ~4 distinct).
    Over 36 distinct times (a heavy customer), no table: each column holds its own hex
    deltas. All three columns are indexed in one pass and sliced apart."""
    hist: list[int] = list(map(_AT4, s.history))  # the ms column
    seen = list(s.seen.values())
    order = list(map(_AT2, s.orders.values()))
    every = hist + seen + order
    distinct = set(every)
    base = s.cursor_ms
    if len(distinct) > len(_INDEX):
        by_h, by_s, by_o = (ct.hex_deltas(c, base) if c else "" for c in (hist, seen, order))
        return "", by_h, by_s, by_o
    if not distinct:
        return "", "", "", ""
    table = sorted(distinct)
    codes = "".join(map(dict(zip(table, _INDEX, strict=False)).__getitem__, every))
    h, n = len(hist), len(hist) + len(seen)
    return ct.hex_deltas(table, base), codes[:h], codes[h:n], codes[n:]


def _table_reader(table: str, base: int) -> _Read:
    if not table:
        return partial(ct.read_hex_deltas, base=base)
    at = dict(zip(_INDEX, ct.read_hex_deltas(table, base), strict=False))
    return lambda column: list(map(at.__getitem__, column))


def _clv(cents: int | None) -> str:
    return "" if cents is None else f"{cents:x}"  # negative: "-..." (int(_, 16) reads it)


# ---------------------------------------------------------------------- the hash
def _chunks(value: str) -> list[str]:
    """``a`` alone, or ``a`` = ``+<n>:`` and the first piece, then ``+1`` .. ``+n``: the
    count makes any longer-ago ``+k`` left in the hash irrelevant (a core never starts
    with ``+``), so the commit needn't delete fields to rewrite a hash."""
    size = CHUNK if value.isascii() else CHUNK // 4  # UTF-8: at most 4 bytes a character
    if len(value) <= size:
        return ["a", value]
    size -= 8  # room for the count
    pieces = [value[i : i + size] for i in range(0, len(value), size)]
    out = ["a", f"+{len(pieces) - 1}:{pieces[0]}"]
    for k, piece in enumerate(pieces[1:], 1):
        out += (f"+{k}", piece)
    return out


def encode_state(s: CustomerState) -> list[str]:
    """The hash's fields and values, flat; the commit replaces the hash with them."""
    table, history, seen, orders = _time_columns(s)
    parts = [_core(s)]
    parts += _history(s.history, history) if s.history else ("", "")
    parts += _dedupe(s.seen, seen) if s.seen else ("", "")
    parts += _orders(s.orders, s.customer_id, orders) if s.orders else ("", "", "", "")
    parts.append(orjson.dumps([list(h) for h in s.held]).decode() if s.held else "")
    parts.append(table)
    if s.days:
        parts += days_columns(s.days, s.orders, day_of(s.cursor_ms))
    if s.clv is not None or s.returns:
        parts += [""] * (14 - len(parts))
        parts += (_clv(s.clv), returns_column(s.returns, s.cursor_ms))
    return _chunks("\n".join(parts).rstrip("\n"))


def decode_state(customer_id: str, raw: Mapping[str, str] | Sequence[str]) -> CustomerState:
    """From ``HGETALL`` output: a dict (redis-py) or a flat list (inside a Lua reply);
    either format (see the module docstring for how they are told apart)."""
    h: Mapping[str, str]
    if type(raw) is list:  # the hot path: a LOAD reply
        h = dict(zip(raw[::2], raw[1::2], strict=True))
    else:
        h = raw if isinstance(raw, Mapping) else dict(zip(raw[::2], raw[1::2], strict=True))
    value = h.get("a")
    if value is None or "f" in h:
        return decode_v1(customer_id, h)
    if value[0] == "+":  # chunked (see _chunks)
        n, _, value = value.partition(":")
        value += "".join([h[f"+{k}"] for k in range(1, int(n) + 1)])
    sec = value.split("\n")
    if len(sec) < _SECTIONS:
        sec += [""] * (_SECTIONS - len(sec))
    f, m, first, last, c, stamp, segments = _read_core(sec[0])
    v2 = sec[10][:1] == "{"  # v2's days, as JSON; v3 writes the time table there
    when = _table_reader("" if v2 else sec[10], c)
    orders = _read_orders(sec[5], sec[6], sec[7], sec[8], customer_id, when) if sec[5] else {}
    if v2:
        days = {int(k): v for k, v in orjson.loads(sec[10]).items()}
    else:
        days = read_days_columns(sec[11], sec[12], sec[13], orders, day_of(c)) if sec[11] else {}
    return CustomerState(
        customer_id=customer_id,
        frequency=f,
        monetary=m,
        first_ms=first,
        last_ms=last,
        cursor_ms=c,
        segments=segments,
        seen=_read_dedupe(sec[3], sec[4], when) if sec[3] else {},
        orders=orders,
        held=[HeldRefund(*x) for x in orjson.loads(sec[9])] if sec[9] else [],
        days=days,
        stamp=stamp,
        history=_read_history(sec[1], sec[2], when) if sec[1] else [],
        clv=int(sec[14], 16) if sec[14] else None,
        returns=read_returns_column(sec[15], c) if sec[15] else [],
    )
