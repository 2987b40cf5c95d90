"""What each axis of a grid measures, and when time alone moves it across a cut.

An axis value is an integer per customer at an as-of time:

=====  ====================================================================  ===========
axis   value                                                                 moves with
=====  ====================================================================  ===========
``r``  recency: as-of − last purchase (ms); *lower* is better                 time
``f``  frequency: orders still holding money (or within ``window``)          events, window
``m``  monetary: net spend in units (or within ``window``)                   events, window
``a``  average order value: m // f (units)                                   events
``t``  tenure: the span of the relationship so far, last − first purchase    events
       (ms; 0 after one purchase); it stops at the last order, so a scheme
       that must age a silent customer pairs it with a time-driven axis
``c``  cadence: time since the last purchase as a percentage of the          time
       customer's own mean interval between orders, (last − first) / (f − 1);
       0 while the customer has fewer than 2 orders (no cadence yet)
``g``  growth: net spend in the last ``window`` as a percentage of the       window
       ``window`` before it; 0 if both are empty, 1,000,000 if only the
       recent one has spend (a new surge)
``p``  P(alive): the probability the customer is still active, per mille     time
       (``floor(1000 · P)``), from the base's fitted BG/NBD model
       (``segments.value``); 1000 before a repeat order
=====  ====================================================================  ===========

Scores run from 1 to the number of bands, higher = more (more recent for ``r``, whose
score is reversed). Every time-driven change lands on a computable instant, so the
engine schedules it instead of scanning: ``r`` at last + cut, ``c`` at last + cut ×
interval / 100, ``p`` when P(alive) falls below a cut (closed form,
``segments.value.alive_due``), ``f``/``m``/``g`` when a purchase day leaves a window
(``segments.windows``).
"""

from __future__ import annotations

import numpy as np

from segments.model import NEVER, Columns
from segments.value import ValueModel, alive_due, alive_permille
from segments.windows import windowed_between, windowed_values

__all__ = ["AXES", "GROWTH_SURGE", "MODEL_AXES", "TIME_AXES", "due_after", "values"]

AXES = ("r", "f", "m", "a", "t", "c", "g", "p")
"""Every axis, in the order cell patterns list them."""

TIME_AXES = frozenset({"c", "p"})
"""Axes (besides ``r``, whose edges are global) that move with time per customer."""

MODEL_AXES = frozenset({"p"})
"""Axes read from the fitted model of the base: unranked until the first fit."""

GROWTH_SURGE = 1_000_000


def values(
    name: str,
    window_ms: int | None,
    cols: Columns,
    asof: np.ndarray,
    model: ValueModel | None = None,
) -> np.ndarray:
    """The axis's value for every customer in ``cols`` at ``asof``."""
    if name == "r":
        return asof - cols.last_ms
    if name in ("f", "m"):
        if window_ms is not None:
            return windowed_values(cols.states, name, window_ms, asof)
        return cols.frequency if name == "f" else cols.monetary
    if name == "a":
        return cols.monetary // np.maximum(cols.frequency, 1)
    if name == "t":
        return cols.last_ms - cols.first_ms
    if name == "c":
        span = cols.last_ms - cols.first_ms
        ok = (cols.frequency >= 2) & (span > 0)
        elapsed = np.maximum(asof - cols.last_ms, 0)
        return np.where(
            ok, elapsed * 100 * np.maximum(cols.frequency - 1, 1) // np.maximum(span, 1), 0
        )
    if name == "g":
        assert window_ms is not None, "growth needs a window"
        recent = windowed_values(cols.states, "m", window_ms, asof)
        before = windowed_between(cols.states, window_ms, 2 * window_ms, asof)
        grown = recent * 100 // np.maximum(before, 1)
        return np.where(before > 0, grown, np.where(recent > 0, GROWTH_SURGE, 0))
    if name == "p":
        assert model is not None, "P(alive) needs a fitted model"
        return alive_permille(model, cols, asof)
    raise ValueError(f"unknown axis {name!r}")


def due_after(
    name: str,
    thresholds: tuple[int, ...],
    cols: Columns,
    cursor: np.ndarray,
    model: ValueModel | None = None,
) -> np.ndarray:
    """For the cadence and P(alive) axes: the first instant after ``cursor`` at which
    the value crosses one of ``thresholds`` (``NEVER`` if none is ahead)."""
    n = len(cursor)
    best = np.full(n, NEVER, dtype=np.int64)
    if not thresholds:
        return best
    if name == "c":
        span = cols.last_ms - cols.first_ms
        orders = cols.frequency - 1
        ok = (cols.frequency >= 2) & (span > 0)
        for thr in thresholds:
            # value = elapsed*100*orders // span >= thr  <=>  elapsed >= thr*span / (100*orders)
            need = -(-(thr * span) // np.maximum(100 * orders, 1))  # ceil
            at = cols.last_ms + need
            best = np.where(ok & (at > cursor) & (at < best), at, best)
        return best
    if name == "p":
        assert model is not None, "P(alive) needs a fitted model"
        return alive_due(model, thresholds, cols, cursor)
    raise ValueError(f"axis {name!r} does not move with time alone")
