"""The first customer-hash format (v1), kept so every state it wrote still loads.

Frozen: nothing writes it any more (``state.codec`` writes v2); the encoder stays for
the compatibility test and the codec micro-benchmark. One field per scalar:

f, m, fs, l, c   frequency, monetary units, first/last purchase ms, cursor ms
s:<scheme>       current segment key per scheme
e                dedupe window: "digest:ms,digest:ms"
o                orders in the refund window: JSON {order_id: [remaining, amount, ms]}
h                refunds held for their purchase: JSON list
w                rolling-window days: JSON {day: [orders, units]} (only with windows)
v                rules_version/cut_version the segments were last evaluated under
t                the latest transitions: "scheme from>to cause-code hex-ms;..."
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from segments.model import CustomerState, HeldRefund

__all__ = ["CAUSE_CODE", "CODE_CAUSE", "decode_v1", "encode_v1", "seen_v1"]

_SEG = "s:"


def seen_v1(raw: str) -> dict[str, int]:
    if not raw:
        return {}
    # "d1:t1,d2:t2" is '{"d1":t1,"d2":t2}' in JSON (digests are URL-safe base64: no
    # quotes, colons or commas), which orjson turns into ints in C
    try:
        out = orjson.loads('{"' + raw.replace(":", '":').replace(",", ',"') + "}")
    except orjson.JSONDecodeError:
        out = None
    if type(out) is dict:
        return out
    out = {}
    for item in raw.split(","):
        digest, _, t = item.partition(":")
        out[digest] = int(t)
    return out


CAUSE_CODE = {
    "first_purchase": "f",
    "purchase": "p",
    "refund": "r",
    "recency_decay": "d",
    "recalibration": "c",
    "rules_change": "u",
}
CODE_CAUSE = {v: k for k, v in CAUSE_CODE.items()}


def _history_entry(h: list[str | int]) -> str:
    """``scheme from>to cause-code hex-ms``, e.g. ``rfm8 new>high_value p 19b7e0f5800``:
    under half the JSON's size (keys and schemes have no spaces, '>' or ';')."""
    scheme, frm, to, cause, ms = h
    return f"{scheme} {frm}>{to} {CAUSE_CODE[str(cause)]} {int(ms):x}"


def _history(raw: str) -> list[list[str | int]]:
    out: list[list[str | int]] = []
    for entry in raw.split(";") if raw else ():
        scheme, move, code, t = entry.split(" ")
        frm, _, to = move.partition(">")
        out.append([scheme, frm, to, CODE_CAUSE[code], int(t, 16)])
    return out


def encode_v1(s: CustomerState) -> list[str | int]:
    first = "" if s.first_ms is None else s.first_ms
    fields: list[str | int] = ["f", s.frequency, "m", s.monetary, "fs", first]
    fields += ["l", s.last_ms, "c", s.cursor_ms]
    fields += ["e", ",".join(f"{d}:{t}" for d, t in s.seen.items())]
    fields += ["o", orjson.dumps(s.orders).decode() if s.orders else ""]
    fields += ["h", orjson.dumps([list(h) for h in s.held]).decode() if s.held else ""]
    fields += ["w", orjson.dumps(s.days, option=orjson.OPT_NON_STR_KEYS).decode() if s.days else ""]
    fields += ["v", s.stamp]
    fields += ["t", ";".join(_history_entry(h) for h in s.history)]
    for scheme, key in s.segments.items():
        fields.append(_SEG + scheme)
        fields.append(key)
    return fields


def decode_v1(customer_id: str, h: Mapping[str, str]) -> CustomerState:
    """From the fields of a v1 hash (``HGETALL`` as a dict)."""
    orders = h.get("o")
    held = h.get("h")
    return CustomerState(
        customer_id=customer_id,
        frequency=int(h.get("f", 0)),
        monetary=int(h.get("m", 0)),
        first_ms=int(h["fs"]) if h.get("fs") else None,
        last_ms=int(h.get("l", 0)),
        cursor_ms=int(h.get("c", 0)),
        segments={k[len(_SEG) :]: v for k, v in h.items() if k.startswith(_SEG)},
        seen=seen_v1(h.get("e", "")),
        orders=orjson.loads(orders) if orders else {},
        held=[HeldRefund(*x) for x in orjson.loads(held)] if held else [],
        days={int(d): v for d, v in orjson.loads(days).items()} if (days := h.get("w")) else {},
        stamp=h.get("v", ""),
        history=_history(h.get("t", "")),
    )
