"""The text primitives of the customer-state codec (:mod:`state.codec`, format v3).

Names as one-character codes or quoted tokens, the stamp, hex columns of numbers and of
time deltas, money in hundredths: each a few C-level passes (``%``-format, ``split``,
``map(int)``, ``accumulate``), because a worker encodes and decodes every customer of a
batch. The sections of a state's hash, built from these, are :mod:`state.codec`'s (the
day-numbered ones :mod:`state.codec_days`'s).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from functools import lru_cache
from itertools import accumulate, chain, repeat

from state.names import CODE, NAME

__all__ = [
    "HEX",
    "Unsafe",
    "hex_deltas",
    "hex_list",
    "money",
    "money_list",
    "name_token",
    "read_hex_deltas",
    "read_money",
    "read_money_list",
    "read_name_token",
    "read_segments_tail",
    "read_stamp_token",
    "segments_tail",
    "stamp_token",
]

_MARK = "'~[{"  # first characters that mean something: a name starting with one is quoted
HEX = repeat(16)  # map(int, parts, HEX): hex parsing in one C pass
_HUNDRED = repeat(100)


class Unsafe(Exception):
    """A name the compact form can't hold (a space or control character): JSON instead."""


def name_token(name: str) -> str:
    code = CODE.get(name)
    if code is not None:
        return code
    if " " in name or not name.isprintable():
        raise Unsafe
    return "'" + name if len(name) < 2 or name[0] in _MARK else name


def read_name_token(t: str) -> str:
    if len(t) == 1:
        return NAME[t]
    return t[1:] if t[0] == "'" else t


def hex_list(values: Sequence[int]) -> str:
    """Space-separated hex, formatted in one C call."""
    return ("%x " * len(values))[:-1] % tuple(values)


def hex_deltas(times: Sequence[int], base: int) -> str:
    """``base - t0``, then ``t_i - t_(i-1)``: short numbers for lists in time order."""
    if len(times) == 1:
        return f"{base - times[0]:x}"
    deltas = (base - times[0], *map(int.__sub__, times[1:], times[:-1]))
    return ("%x " * len(times))[:-1] % deltas


def read_hex_deltas(deltas: str, base: int) -> list[int]:
    """Inverse of :func:`hex_deltas`."""
    if " " not in deltas:  # one item: the common case
        return [base - int(deltas, 16)]
    d = list(map(int, deltas.split(" "), HEX))
    d[0] = base - d[0]
    return list(accumulate(d))


@lru_cache(maxsize=4096)
def segments_tail(stamp: str, segments: tuple[tuple[str, str], ...]) -> str:
    """The stamp and segment tokens: few distinct combinations, so cached. Codes are run
    together (one character a name, so the run splits back without separators)."""
    tokens = list(map(name_token, chain.from_iterable(segments)))
    run = "".join(tokens)
    if len(run) == len(tokens):
        return f"{stamp_token(stamp)} {run}" if run else stamp_token(stamp)
    return " ".join([stamp_token(stamp), *tokens])


@lru_cache(maxsize=4096)
def read_segments_tail(raw: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    tok = raw.split(" ")
    # a run of codes is one token (names spelled out come in pairs: 3+ tokens)
    names = list(map(NAME.__getitem__, tok[1]) if len(tok) == 2 else map(read_name_token, tok[1:]))
    return read_stamp_token(tok[0]), tuple(zip(names[::2], names[1::2], strict=True))


@lru_cache(maxsize=64)
def stamp_token(stamp: str) -> str:
    """``=`` and the rules version's 12 hex digits as 8 base64 ones (few distinct stamps:
    cached), else the stamp itself (quoted if it starts with a marker)."""
    if " " in stamp or not stamp.isprintable():
        raise Unsafe
    rules, slash, cut = stamp.partition("/")
    if slash and len(rules) == 12 and all(ch in "0123456789abcdef" for ch in rules):
        return "=" + base64.urlsafe_b64encode(bytes.fromhex(rules)).decode() + "/" + cut
    return "'" + stamp if stamp[:1] in ("=", "'") else stamp


@lru_cache(maxsize=64)
def read_stamp_token(t: str) -> str:
    if t[:1] == "=":
        return base64.urlsafe_b64decode(t[1:9]).hex() + t[9:]
    return t[1:] if t[:1] == "'" else t


def money(units: int) -> str:
    """Hex of the amount in hundredths of its units (a 2-decimal price is a multiple of
    100 units: two hex digits fewer), or ``.`` and the hex of the units."""
    return f"{units // 100:x}" if units % 100 == 0 else f".{units:x}"


def read_money(t: str) -> int:
    return int(t[1:], 16) if t[0] == "." else int(t, 16) * 100


def money_list(units: Sequence[int]) -> str:
    """Amounts as :func:`money`, for a whole column: hundredths unless any isn't a
    multiple of 100, then ``. `` and the units."""
    if any(map(int.__mod__, units, _HUNDRED)):
        return ". " + hex_list(units)
    return hex_list(list(map(int.__floordiv__, units, _HUNDRED)))


def read_money_list(text: str) -> list[int]:
    if text[0] == ".":
        return list(map(int, text[2:].split(" "), HEX))
    return list(map(int.__mul__, map(int, text.split(" "), HEX), _HUNDRED))
