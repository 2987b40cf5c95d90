"""The second customer-hash format (v2)'s writer, kept for the tests and the benchmark.

Frozen: nothing in the service writes v2 any more (``state.codec`` writes v3, and its
reader reads v2 hashes as they are). What v3 changed is here in v2's form: the segment
tokens space-separated and the rolling-window days as JSON; every other section is
written by v3's own helpers, whose format v3 did not change (a test pins this writer's
output byte for byte to what the v2 release wrote). Used by the compatibility tests (a
namespace written by v2 loads unchanged, and is rewritten as v3 by the next commit) and
by ``bench.bench_codec`` (v2 against v3 in the same run).
"""

from __future__ import annotations

from itertools import chain
from typing import cast

import orjson

from segments.model import CustomerState
from state.codec import _chunks, _dedupe, _history, _orders
from state.codec_text import Unsafe, hex_deltas, money, name_token, stamp_token

__all__ = ["encode_v2"]


def _core_v2(s: CustomerState) -> str:
    c, last, m = s.cursor_ms, s.last_ms, s.monetary
    first = "" if s.first_ms is None else f"{last - s.first_ms:x}"
    try:
        names = map(name_token, chain.from_iterable(s.segments.items()))
        tail = " ".join([stamp_token(s.stamp), *names])
    except Unsafe:
        doc = [s.frequency, m, s.first_ms, last, c, s.stamp, list(s.segments.items())]
        return orjson.dumps(doc).decode()
    return f"{s.frequency:x} {money(m)} {c:x} {c - last:x} {first} {tail}"


def encode_v2(s: CustomerState) -> list[str]:
    """The hash's fields and values, flat, as the v2 release wrote them."""
    base = s.cursor_ms  # each column its own hex deltas
    parts = [_core_v2(s)]
    if s.history:
        parts += _history(s.history, hex_deltas([cast(int, h[4]) for h in s.history], base))
    else:
        parts += ("", "")
    parts += _dedupe(s.seen, hex_deltas(list(s.seen.values()), base)) if s.seen else ("", "")
    if s.orders:
        times = hex_deltas([o[2] for o in s.orders.values()], base)
        parts += _orders(s.orders, s.customer_id, times)
    else:
        parts += ("", "", "", "")
    parts.append(orjson.dumps([list(h) for h in s.held]).decode() if s.held else "")
    parts.append(orjson.dumps(s.days, option=orjson.OPT_NON_STR_KEYS).decode() if s.days else "")
    return _chunks("\n".join(parts).rstrip("\n"))
