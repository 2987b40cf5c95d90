"""The processor's modes as types: what it writes as, and where its reading position lives.

Defined once here so a typo is a type error, not a position written to a meta field no
reader looks at.
"""

from __future__ import annotations

from typing import Final, Literal, NewType, TypeAlias

from schemas.transition import Mode

__all__ = [
    "OFFSETS",
    "STAGED",
    "SWEEP",
    "FilePosition",
    "Mode",
    "Position",
    "file_position",
]

# Mode = Literal["live", "backfill"]: the ``mode`` of every transition written, so it lives
# with the transition schema (schemas.transition) and is re-exported here for the processor.

FilePosition = NewType("FilePosition", str)
"""The meta field of a file import's position (its lines): ``file:<digest of the file>``."""

Position: TypeAlias = Literal["off", "fwd", "sweep"] | FilePosition
"""A meta field of the partition that holds a reader's position, committed with the state:
Kafka offsets, the staged (forwarded) records' sequence, the sweep's cursor, or a file's
lines. Only :data:`OFFSETS` is a consumer position that can be rewound."""

OFFSETS: Final = "off"
"""Kafka offsets of the purchases partition (the live worker and a topic backfill)."""

STAGED: Final = "fwd"
"""The staged misrouted records' sequence numbers: :data:`state.forwarded.FORWARDED`."""

SWEEP: Final = "sweep"
"""The sweep's ``target|scan cursor`` (:mod:`stream.apply.sweeps`)."""


def file_position(digest: str) -> FilePosition:
    """The position field of a file import, per file content (a re-import resumes)."""
    return FilePosition(f"file:{digest}")
