"""Cell patterns: which score combinations a segment covers.

A cell is one score per declared axis (in r, f, m order), each from 1 to that axis's
band count. A pattern has one token per axis: a digit (``5``), a set or range in
brackets (``[45]``, ``[2-4]``, ``[1-2 5]``) or ``*`` (any score). ``"5[45]*"`` covers
R 5, F 4-5, any M. Scores are single digits, so an axis has at most 9 bands.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence

__all__ = [
    "MAX_BANDS",
    "Cell",
    "PatternError",
    "all_cells",
    "cell_owners",
    "cells_of",
    "format_cell",
]

MAX_BANDS = 9
Cell = tuple[int, ...]


class PatternError(ValueError):
    """A pattern that cannot be read; the message says where."""


_TOKEN = re.compile(r"\s*(\d|\*|\[[^\]]*\])")
_ITEM = re.compile(r"\s*(\d)(?:\s*-\s*(\d))?")


def _tokens(pattern: str) -> list[str]:
    out, pos = [], 0
    while pos < len(pattern):
        m = _TOKEN.match(pattern, pos)
        if m is None:
            if not pattern[pos:].strip():
                break
            raise PatternError(f"{pattern!r}: cannot read {pattern[pos:].strip()!r}")
        out.append(m.group(1))
        pos = m.end()
    return out


def _scores(token: str, bands: int, pattern: str, axis: str) -> set[int]:
    if token == "*":
        return set(range(1, bands + 1))
    values: set[int] = set()
    body, pos = (token[1:-1], 0) if token.startswith("[") else (token, 0)
    while body[pos:].strip():
        m = _ITEM.match(body, pos)
        if m is None:
            raise PatternError(f"{pattern!r}: {token!r} is not a set of scores")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if lo > hi:
            raise PatternError(f"{pattern!r}: range {lo}-{hi} in {token!r} runs backwards")
        values.update(range(lo, hi + 1))
        pos = m.end()
    if not values:
        raise PatternError(f"{pattern!r}: {token!r} is empty")
    outside = sorted(v for v in values if not 1 <= v <= bands)
    if outside:
        raise PatternError(
            f"{pattern!r}: score {outside[0]} is outside {axis}'s {bands} bands (1-{bands})"
        )
    return values


def cells_of(pattern: str, axes: Sequence[str], bands: Sequence[int]) -> set[Cell]:
    """Every cell ``pattern`` covers; :class:`PatternError` if it is malformed."""
    tokens = _tokens(pattern)
    if len(tokens) != len(axes):
        raise PatternError(
            f"{pattern!r} has {len(tokens)} scores; this scheme has {len(axes)} axes "
            f"({''.join(axes)})"
        )
    choices = [
        sorted(_scores(t, n, pattern, a)) for t, n, a in zip(tokens, bands, axes, strict=True)
    ]
    return set(itertools.product(*choices))


def all_cells(bands: Sequence[int]) -> list[Cell]:
    return list(itertools.product(*(range(1, n + 1) for n in bands)))


def format_cell(cell: Cell) -> str:
    return "".join(str(s) for s in cell)


def cell_owners(
    segments: Mapping[str, Sequence[str]], axes: Sequence[str], bands: Sequence[int]
) -> tuple[dict[Cell, list[str]], dict[str, str]]:
    """Cell -> segments covering it, and segment -> pattern error (if any)."""
    owners: dict[Cell, list[str]] = {}
    errors: dict[str, str] = {}
    for key, patterns in segments.items():
        for pattern in patterns:
            try:
                covered = cells_of(pattern, axes, bands)
            except PatternError as exc:
                errors.setdefault(key, str(exc))
                continue
            for cell in covered:
                if key not in owners.setdefault(cell, []):
                    owners[cell].append(key)
    return owners, errors
