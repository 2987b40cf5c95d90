"""Deterministic transition ids: same customer, scheme, from, to, effective time ⇒ same id.

Nothing run-specific (worker, mode, emit time, namespace) goes in, so a decay fired
by the live timer and the same decay caught up in a replay share an id and consumers
can dedupe on it.
"""

from __future__ import annotations

import hashlib

__all__ = ["transition_id"]


def transition_id(
    customer_id: str, scheme: str, from_segment: str, to_segment: str, effective_ms: int
) -> str:
    """The 128-bit BLAKE2b digest written as a UUID (8-4-4-4-12 hex digits).

    ``str(uuid.UUID(bytes=digest))`` gives the same text, but building the UUID object
    was half the cost of encoding a transition; slicing the hex digest is C-level work.
    """
    text = f"{customer_id}\x1f{scheme}\x1f{from_segment}\x1f{to_segment}\x1f{effective_ms}"
    h = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
