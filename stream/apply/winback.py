"""What a commit adds to the win-back counters: :func:`segments.winback.moves` as counter
hashes, committed atomically with the states beside the other tallies (so a redelivered
batch, which the commit's offset and dedupe refuse, counts nothing twice)."""

from __future__ import annotations

from datetime import UTC, datetime

from segments.winback import Moves, counter_fields
from state.winback import winback_hash

__all__ = ["winback_counters"]


def _month_end_ms(month: str) -> int:
    y, m = int(month[:4]), int(month[4:])
    end = datetime(y + m // 12, m % 12 + 1, 1, tzinfo=UTC)
    return int(end.timestamp() * 1000)


def winback_counters(
    m: Moves, retention_ms: int
) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """(counter hash -> field -> delta, hash -> expire-at ms): a cohort month's hash
    expires ``retention_ms`` (``RFM_MATRIX_RETENTION``) after the month ends, in event
    time, like the flows; a return to a cohort already expired is not kept either."""
    counters: dict[str, dict[str, int]] = {}
    expire: dict[str, int] = {}
    for (month, name), n in counter_fields(m).items():
        key = winback_hash(month)
        counters.setdefault(key, {})[name] = n
        expire[key] = _month_end_ms(month) + retention_ms
    return counters, expire
