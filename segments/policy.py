"""How long the engine remembers things, and the digest its dedupe window keeps."""

from __future__ import annotations

import binascii
import hashlib
from dataclasses import dataclass

from schemas.times import DAY_MS

__all__ = ["Policy", "event_digest"]

_URLSAFE = bytes.maketrans(b"+/", b"-_")


@dataclass(frozen=True, slots=True)
class Policy:
    """How long the engine remembers things, in event-time milliseconds."""

    dedupe_ms: int = 30 * DAY_MS
    order_retention_ms: int = 90 * DAY_MS
    refund_hold_ms: int = 7 * DAY_MS
    history: int = 5
    """How many of a customer's latest transitions their state keeps (for lookups)."""


def event_digest(event_id: str) -> str:
    """A short, stable digest of an event id (what the dedupe window stores).

    72 bits, 12 characters: collisions within one customer's window are ~1e-18.
    """
    raw = hashlib.blake2b(event_id.encode(), digest_size=9).digest()
    # base64.urlsafe_b64encode, without its Python-level wrapper (a call per event)
    return binascii.b2a_base64(raw, newline=False).translate(_URLSAFE).decode()
