"""The engine's plain data: a customer's state, input events, output drafts and rejections."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "NEVER",
    "NONE",
    "Columns",
    "CustomerState",
    "Event",
    "HeldRefund",
    "Outcome",
    "Purchase",
    "Refund",
    "Rejection",
    "TransitionDraft",
]

NONE = "none"
"""Segment key of a customer before their first purchase."""

NEVER = np.iinfo(np.int64).max
"""No due time: the largest int64. The store's schedule, every due-time computation and
the fold agree on it, so it is defined here, once."""


@dataclass(slots=True)
class CustomerState:
    """What Redis keeps per customer. Times are epoch ms, money fixed-point units.

    ``cursor_ms`` is the event time up to which this customer's segment history has
    been materialised (last applied event or fired decay): decays due at or before
    it are already out, and a late event is classified at the cursor, never earlier,
    so the emitted history never runs backwards.
    """

    customer_id: str
    frequency: int = 0
    monetary: int = 0
    first_ms: int | None = None
    last_ms: int = 0
    cursor_ms: int = 0
    segments: dict[str, str] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)
    """Digest of each applied event id -> as-of time it was applied (dedupe window)."""
    orders: dict[str, list[int]] = field(default_factory=dict)
    """order id -> [remaining units, purchased units, occurred ms] (refund window)."""
    held: list[HeldRefund] = field(default_factory=list)
    """Refunds that arrived before their purchase, waiting until ``until_ms``."""
    days: dict[int, list[int]] = field(default_factory=dict)
    """Purchase day -> [orders, units], kept only while a rolling window can see it."""
    stamp: str = ""
    """``rules_version/cut_version`` the segments were last evaluated under."""
    history: list[list[str | int]] = field(default_factory=list)
    """The latest transitions, oldest first: [scheme, from, to, cause, effective ms]."""
    clv: int | None = None
    """CLV in cents as of the last evaluation, kept only while some scheme has
    ``value_figures`` and the base's model is fitted: the worth sums take it out again
    (:mod:`segments.worth`)."""
    returns: list[list[str | int]] = field(default_factory=list)
    """Open win-back returns, one per scheme: [scheme, entry ms, return ms], kept while
    the return is within its revenue window (:mod:`segments.winback`)."""

    @property
    def has_purchased(self) -> bool:
        return self.frequency > 0


class Purchase(NamedTuple):
    """A validated purchase reduced to what the maths needs."""

    customer_id: str
    event_id: str
    occurred_ms: int
    amount_units: int
    order_id: str = ""


class Refund(NamedTuple):
    """A validated refund of (part of) ``order_id``.

    ``ref`` is opaque to the engine: the stream's pointer to the original message,
    handed back in a :class:`Rejection` if the refund is ever dead-lettered.
    """

    customer_id: str
    event_id: str
    occurred_ms: int
    amount_units: int
    order_id: str
    ref: str = ""


Event = Purchase | Refund


class HeldRefund(NamedTuple):
    event_id: str
    order_id: str
    amount_units: int
    occurred_ms: int
    until_ms: int
    ref: str


class Rejection(NamedTuple):
    """An event the rules refuse (e.g. a refund larger than its order): a dead letter."""

    customer_id: str
    event_id: str
    ref: str
    error_class: str
    message: str


@dataclass(slots=True)
class TransitionDraft:
    """A segment change as the pure engine sees it; the stream adds id-free envelope bits.

    A value, never changed once made; not ``frozen`` only because a backfill makes one per
    transition (hundreds of thousands) and a frozen dataclass's ``__init__`` costs ~5x a
    plain one (1.4 vs 0.25 µs measured). Never hashed (``scores`` is a dict).
    """

    customer_id: str
    scheme: str
    from_segment: str
    to_segment: str
    cause: str
    effective_ms: int
    event_id: str | None
    frequency: int
    monetary: int
    first_ms: int | None
    last_ms: int
    scores: dict[str, int]


@dataclass(slots=True, frozen=True)
class Columns:
    """A batch of customers as numpy columns, the input of every scheme's maths.

    Rolling-window totals are not a column: :mod:`segments.windows` computes them from
    ``states`` (this module is plain data and imports no maths).
    """

    last_ms: npt.NDArray[np.int64]
    frequency: npt.NDArray[np.int64]
    monetary: npt.NDArray[np.int64]
    states: Sequence[CustomerState] = ()
    """The states themselves, for what isn't a column (rolling-window totals)."""
    first_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """First purchase (the last one's time when there is none: a span of 0)."""
    memo: dict[object, object] = field(default_factory=dict, compare=False, repr=False)
    """What the schemes computed from these columns (an axis's values at an as-of), so
    schemes sharing an axis compute it once per batch (``GridScheme``'s business)."""

    @classmethod
    def of(cls, states: Sequence[CustomerState]) -> Columns:
        n = len(states)
        return cls(
            last_ms=np.fromiter((s.last_ms for s in states), np.int64, n),
            frequency=np.fromiter((s.frequency for s in states), np.int64, n),
            monetary=np.fromiter((s.monetary for s in states), np.int64, n),
            states=states,
            first_ms=np.fromiter(
                (s.last_ms if s.first_ms is None else s.first_ms for s in states), np.int64, n
            ),
        )


@dataclass(slots=True)
class Outcome:
    """What applying events or time produced."""

    transitions: list[TransitionDraft] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    duplicates: int = 0

    def extend(self, other: Outcome) -> None:
        self.transitions.extend(other.transitions)
        self.rejected.extend(other.rejected)
        self.duplicates += other.duplicates
