"""Deterministic transition ids: same customer, scheme, from, to, effective time ⇒ same id.

Nothing run-specific (worker, mode, emit time, namespace) goes in, so a decay fired
by the live timer and the same decay caught up in a replay share an id and consumers
can dedupe on it.
"""

from __future__ import annotations

import hashlib
import uuid

__all__ = ["transition_id"]


def transition_id(
    customer_id: str, scheme: str, from_segment: str, to_segment: str, effective_ms: int
) -> str:
    text = f"{customer_id}\x1f{scheme}\x1f{from_segment}\x1f{to_segment}\x1f{effective_ms}"
    digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest))
