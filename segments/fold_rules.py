"""What a batch is folded under (:func:`segments.fold.fold`), as one plain value the
engine makes (:meth:`Engine.fold_rules`): the fold's modules import this, never the
engine."""

from __future__ import annotations

from dataclasses import dataclass

from segments.causes import stamp_of, time_cause
from segments.grid import TimeEdges
from segments.limits import Limits
from segments.model import NONE, CustomerState
from segments.policy import Policy
from segments.scheme import Scheme

__all__ = ["FoldRules"]


@dataclass(frozen=True, slots=True)
class FoldRules:
    """What a batch is folded under: an engine's schemes, policy and limits, and what the
    engine derived from them, as plain values (made per call: the cut-point version
    changes when the engine is recalibrated)."""

    schemes: tuple[Scheme, ...]
    policy: Policy
    limits: Limits
    recency_edges: tuple[int, ...]
    """Every scheme's recency edges, sorted: the elapsed times since the last purchase
    at which a classification may change (the due times)."""
    window_ms: int
    """The longest rolling window, 0 for none (what a purchase day is kept for)."""
    rules_version: str
    cut_version: int | None
    versioned: frozenset[str]
    """Names of the schemes a new cut-point version can move."""
    windows: tuple[int, ...] = ()
    """Every rolling window a scheme reads (a purchase day leaving one is a due time)."""
    time_edges: tuple[TimeEdges, ...] = ()
    """The grid schemes' cadence and P(alive) axes, merged (``merged_time_edges``)."""

    @property
    def stamp(self) -> str:
        """What the customers of the batch are stamped with (``Engine.stamp``)."""
        return stamp_of(self.rules_version, self.cut_version)

    def time_cause(self, s: CustomerState, scheme: str, trigger: str) -> str:
        """:func:`~segments.causes.time_cause` of ``s`` moving in ``scheme``."""
        return time_cause(
            s.stamp,
            s.segments.get(scheme, NONE),
            trigger,
            self.rules_version,
            str(self.cut_version or 0),
            scheme in self.versioned,
        )
