"""Why a customer moved when no event moved them: the cause a timer step or a sweep
writes on the transition (DESIGN.md's ``recency_decay`` | ``rules_change`` |
``recalibration``). One rule, used by the engine's rounds and by the batch fold."""

from __future__ import annotations

from segments.model import NONE

__all__ = ["SWEEP", "stamp_of", "time_cause"]

SWEEP = "sweep"
"""Trigger of a background re-evaluation (never a cause on the wire)."""


def stamp_of(rules_version: str, cut_version: int | None) -> str:
    """What a customer evaluated under these rules and cut points is stamped with
    (``rules/cut``, cut 0 before any cut-point version)."""
    return f"{rules_version}/{cut_version or 0}"


def time_cause(
    stamp: str, segment: str, trigger: str, rules_version: str, cut: str, versioned: bool
) -> str:
    """The cause of a move by ``trigger`` (``recency_decay``: the timer; :data:`SWEEP`)
    of a customer last evaluated under ``stamp`` (``rules/cut``, empty for an older
    state) and now in ``segment`` of a scheme (``versioned``: moved by new cut points).

    A customer last evaluated under other rules (or other cut points, for a scheme with
    quantile axes) moves because of those, not because time passed; whichever of the
    timer and the background sweep gets there first says so.
    """
    if stamp:
        rules, _, cut_was = stamp.partition("/")
        if rules != rules_version:
            return "rules_change"
        if cut_was != cut and (versioned or trigger == SWEEP):
            return "recalibration"
    elif trigger == SWEEP or segment == NONE:
        return "rules_change"  # unstamped (older state): evaluated under unknown rules
    return "recency_decay" if trigger == "recency_decay" else "rules_change"
