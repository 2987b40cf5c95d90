"""Human durations (``90d``, ``12h``, ``30s``) as integer milliseconds.

Event times are kept as integer epoch milliseconds everywhere in the hot path, so a
duration is an ``int`` of milliseconds too; no float seconds creep into boundaries.
"""

from __future__ import annotations

import re

from schemas.times import DAY_MS

__all__ = ["format_duration", "parse_duration", "parse_duration_or_zero"]

_UNITS_MS = {
    "ms": 1,
    "s": 1_000,
    "m": 60_000,
    "h": 3_600_000,
    "d": DAY_MS,
    "w": 7 * DAY_MS,
}
_PART = re.compile(r"(\d+)(ms|s|m|h|d|w)")


def parse_duration(text: str | int) -> int:
    """Parse ``"90d"``, ``"12h"``, ``"1h30m"``, ``"500ms"`` (or an int of ms) into ms.

    Raises ``ValueError`` with a message fit for a settings error.
    """
    if isinstance(text, bool):
        raise ValueError("a duration must be like 90d, 12h, 30s")  # noqa: TRY004 (pydantic)
    if isinstance(text, int):
        if text <= 0:
            raise ValueError("a duration must be positive")
        return text
    s = str(text).strip().lower()
    pos, total = 0, 0
    for match in _PART.finditer(s):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _UNITS_MS[match.group(2)]
        pos = match.end()
    if not s or pos != len(s):
        raise ValueError(
            f"{text!r} is not a duration; use a number and a unit: ms, s, m, h, d, w "
            "(e.g. 90d, 12h, 30s, 1h30m)"
        )
    if total <= 0:
        raise ValueError("a duration must be positive")
    return total


def parse_duration_or_zero(value: object) -> int:
    """:func:`parse_duration`, or zero (``0``, ``0s``, ...) for a setting that may be off."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("must be 0 or a positive duration")
        return value
    if isinstance(value, str) and re.fullmatch(r"0+(ms|s|m|h|d|w)?", value.strip().lower()):
        return 0
    return parse_duration(value if isinstance(value, bool) else str(value))  # its own error


def format_duration(ms: int) -> str:
    """The shortest exact spelling of ``ms`` (inverse of :func:`parse_duration`)."""
    parts = []
    for unit in ("w", "d", "h", "m", "s", "ms"):
        size = _UNITS_MS[unit]
        if ms >= size:
            n, ms = divmod(ms, size)
            parts.append(f"{n}{unit}")
    return "".join(parts) or "0ms"
