"""CustomerState <-> Redis hash fields. Short field names: the hash stays a small listpack."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from segments.model import CustomerState

__all__ = ["decode_state", "encode_state"]

_SEG = "s:"


def encode_state(s: CustomerState) -> list[str | int]:
    fields: list[str | int] = [
        "f",
        s.frequency,
        "m",
        s.monetary,
        "fs",
        s.first_ms,
        "l",
        s.last_ms,
        "c",
        s.cursor_ms,
    ]
    for scheme, key in s.segments.items():
        fields.append(_SEG + scheme)
        fields.append(key)
    return fields


def decode_state(customer_id: str, raw: Mapping[str, str] | Sequence[str]) -> CustomerState:
    """From ``HGETALL`` output: a dict (redis-py) or a flat list (inside a Lua reply)."""
    h = raw if isinstance(raw, Mapping) else dict(zip(raw[::2], raw[1::2], strict=True))
    return CustomerState(
        customer_id=customer_id,
        frequency=int(h.get("f", 0)),
        monetary=int(h.get("m", 0)),
        first_ms=int(h.get("fs", 0)),
        last_ms=int(h.get("l", 0)),
        cursor_ms=int(h.get("c", 0)),
        segments={k[len(_SEG) :]: v for k, v in h.items() if k.startswith(_SEG)},
    )
