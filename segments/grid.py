"""A grid scheme: each axis split into bands, each cell of scores mapped to one segment.

Every RFM scheme of the literature is one of these: the 2×2×2 grid (rfm8), the
3×3×3 and 5×5×5 grids with named groups of cells (rfm27, rfm125), and the customer
pyramid (one monetary axis cut at population quantiles).

Band edges are held as integer *thresholds with at-or-above semantics*, whatever the
rules file said, so one comparison rule serves fixed and quantile cut points:

- F and M: score = 1 + number of thresholds ``<= value``.
- R: score = bands − number of thresholds ``<= elapsed`` (elapsed = as-of − last
  purchase), so at exactly ``last + threshold`` the customer has dropped a band: the
  due time of a decay is a clean instant.

A fixed cut "spent at least 5000" is the threshold 5000 itself. A quantile cut point
q (the value at or below which a fraction q of customers lie) becomes the threshold
``q + 1``: the band above holds the customers strictly above it, so "top 1 %" never
holds more than 1 % of customers, however many tie at the cut.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, cast

import numpy as np

from schemas.durations import format_duration
from segments.axes import AXES, MODEL_AXES, TIME_AXES, due_after
from segments.axes import values as axis_values
from segments.model import NONE, Columns
from segments.scheme import Scheme
from segments.value import ValueModel

__all__ = ["Axis", "GridScheme", "TimeEdges", "merged_time_edges", "timed_due"]


@dataclass(frozen=True, slots=True)
class Axis:
    """One axis of a grid: its thresholds (at-or-above, ascending) or its quantiles.

    ``thresholds`` is ``None`` for a quantile axis whose cut points are not known yet
    (an empty population), and ``model`` is ``None`` for the P(alive) axis before the
    base's first model fit: the scheme then ranks nobody.
    """

    name: str
    thresholds: tuple[int, ...] | None
    quantiles: tuple[float, ...] | None = None
    window_ms: int | None = None
    model: ValueModel | None = None

    @property
    def ready(self) -> bool:
        """Its cut points (and, for ``p``, the model) are known: it can score."""
        return self.thresholds is not None and (
            self.name not in MODEL_AXES or self.model is not None
        )

    @property
    def bands(self) -> int:
        edges = self.quantiles if self.quantiles is not None else self.thresholds
        return len(edges or ()) + 1

    def describe(self) -> str:
        if self.quantiles is not None:
            edges = "q" + ",".join(f"{q:g}" for q in self.quantiles)
        elif self.name in ("r", "t"):
            edges = ",".join(format_duration(t) for t in self.thresholds or ())
        else:
            edges = ",".join(str(t) for t in self.thresholds or ())
        window = f"/{format_duration(self.window_ms)}" if self.window_ms else ""
        return f"{self.name}[{edges}]{window}"


class TimeEdges(NamedTuple):
    """The values of a timed axis (cadence, P(alive)) at which time alone moves a
    customer, under one model of the base."""

    axis: str
    edges: tuple[int, ...]
    model: ValueModel | None


def merged_time_edges(schemes: Sequence[Scheme]) -> list[TimeEdges]:
    """The timed axes of every grid scheme, one entry per (axis, model) with the union
    of their edges: a due time is the earliest crossing of any edge, so one
    :func:`~segments.axes.due_after` per axis answers for every scheme at once (P(alive)'s
    is a bisection: per scheme, it was the most expensive call of a timer step)."""
    merged: dict[tuple[str, int], tuple[set[int], ValueModel | None]] = {}
    for s in schemes:
        for t in s.time_edges() if isinstance(s, GridScheme) else ():
            edges, _ = merged.setdefault((t.axis, id(t.model)), (set(), t.model))
            edges.update(t.edges)
    return [TimeEdges(a, tuple(sorted(e)), m) for (a, _), (e, m) in merged.items()]


def timed_due(timed: Sequence[TimeEdges], cols: Columns, cursor: np.ndarray) -> np.ndarray | None:
    """Per customer, the next instant one of ``timed`` crosses an edge (None: no axis)."""
    due = None
    for t in timed:
        at = due_after(t.axis, t.edges, cols, cursor, t.model)
        due = at if due is None else np.minimum(due, at)
    return due


class GridScheme(Scheme):
    """Cells of per-axis scores mapped to segment keys by a full lookup table."""

    def __init__(
        self,
        name: str,
        axes: Sequence[Axis],
        cell_map: Mapping[tuple[int, ...], str],
        labels: Mapping[str, str],
        hysteresis: float = 0.0,
        value_figures: bool = False,
    ) -> None:
        names = [a.name for a in axes]
        if not axes or names != [a for a in AXES if a in names]:
            raise ValueError(
                f"{name}: axes must be a subset of {', '.join(AXES)} in that order: {names}"
            )
        self.name = name
        self.axes = tuple(axes)
        self.labels = dict(labels)
        self.hysteresis = hysteresis
        self.value_figures = value_figures
        """Its transitions carry the customer's value figures (CLV, P(alive))."""
        bands = [a.bands for a in self.axes]
        self._strides = np.array(
            [int(np.prod(bands[i + 1 :], dtype=np.int64)) for i in range(len(bands))],
            dtype=np.int64,
        )
        table = np.empty(int(np.prod(bands)), dtype=object)
        table[:] = None
        for cell, key in cell_map.items():
            table[self._index_of(cell)] = key
        missing = [i for i, k in enumerate(table) if k is None]
        if missing:
            raise ValueError(f"{name}: {len(missing)} cells have no segment")
        self._table = table
        self._cells = dict(cell_map)
        self.ranked = all(a.ready for a in self.axes)
        # the hot path's numpy inputs, made once (a round of one customer is common)
        self._thresholds = [
            np.asarray(a.thresholds, dtype=np.int64) if a.ready else None for a in self.axes
        ]
        self._stride_list = [int(x) for x in self._strides]

    def _index_of(self, cell: tuple[int, ...]) -> int:
        return int(sum((s - 1) * int(st) for s, st in zip(cell, self._strides, strict=True)))

    @property
    def cells(self) -> dict[tuple[int, ...], str]:
        return dict(self._cells)

    @property
    def bands(self) -> tuple[int, ...]:
        return tuple(a.bands for a in self.axes)

    @property
    def versioned(self) -> bool:
        """A new cut-point version can move its customers: quantile axes or P(alive)."""
        return any(a.quantiles is not None or a.name in MODEL_AXES for a in self.axes)

    @property
    def calibrated(self) -> bool:
        """Its transitions name the cut-point version: it moves with one (``versioned``)
        or its snapshots carry the version's model figures (``value_figures``)."""
        return self.versioned or self.value_figures

    @property
    def reads_model(self) -> bool:
        """It needs the base's fitted model: a P(alive) axis, or value figures."""
        return self.value_figures or any(a.name in MODEL_AXES for a in self.axes)

    # ------------------------------------------------------------------ maths
    def _values(self, axis: Axis, cols: Columns, asof_ms: np.ndarray) -> np.ndarray:
        """The axis's values, computed once per (axis, window, model) for ``cols`` at this
        very ``asof_ms`` array: every scheme of the engine classifies the same columns at
        the same as-of, and many share an axis (f, m, windowed m, growth, P(alive))."""
        key = (axis.name, axis.window_ms)
        hit = cols.memo.get(key)
        if hit is not None:
            at, model, found = cast(tuple[np.ndarray, ValueModel | None, np.ndarray], hit)
            if at is asof_ms and model is axis.model:
                return found
        found = axis_values(axis.name, axis.window_ms, cols, asof_ms, axis.model)
        cols.memo[key] = (asof_ms, axis.model, found)
        return found

    def scores(self, cols: Columns, asof_ms: np.ndarray) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for axis, thr in zip(self.axes, self._thresholds, strict=True):
            if thr is None:
                out[axis.name] = np.zeros(len(cols.last_ms), dtype=np.int64)
                continue
            passed = thr.searchsorted(self._values(axis, cols, asof_ms), side="right")
            out[axis.name] = (axis.bands - passed) if axis.name == "r" else (1 + passed)
        return out

    def classify(
        self, cols: Columns, asof_ms: np.ndarray, prev: Sequence[str] | None = None
    ) -> np.ndarray:
        """Segment keys; with ``hysteresis`` and the current keys ``prev``, a customer
        stays put while some cell of their current segment is within the margin."""
        if not self.ranked:
            out = np.empty(len(cols.last_ms), dtype=object)
            out[:] = NONE
            return out
        idx = None
        ranked = cast(list[np.ndarray], self._thresholds)  # ranked: every axis has its cuts
        for axis, thr, stride in zip(self.axes, ranked, self._stride_list, strict=True):
            passed = thr.searchsorted(self._values(axis, cols, asof_ms), side="right")
            band = (axis.bands - 1 - passed) if axis.name == "r" else passed  # score - 1
            idx = band * stride if idx is None else idx + band * stride
        keys = self._table[idx]
        if self.hysteresis and prev is not None:
            self._stick(keys, prev, cols, asof_ms)
        return keys

    def _stick(
        self, keys: np.ndarray, prev: Sequence[str], cols: Columns, asof_ms: np.ndarray
    ) -> None:
        """Anti-flapping: to leave a band, a value must pass its cut by the margin.

        Per axis the plausible scores run from the score against thresholds raised by
        the margin (what it takes to move up) to the score against thresholds lowered
        by it (what it takes to move down); R has no margin (time moves it one way
        only). A customer whose current segment owns a cell within those ranges keeps
        it. No extra state: the current segment is all it needs.
        """
        moved = [i for i, (k, p) in enumerate(zip(keys, prev, strict=True)) if k != p and p != NONE]
        if not moved:
            return
        ranges = self._margins(cols, asof_ms, np.asarray(moved))
        for j, i in enumerate(moved):
            if self._holds(prev[i], ranges, j):
                keys[i] = prev[i]

    def _margins(
        self, cols: Columns, asof_ms: np.ndarray, at: np.ndarray | slice
    ) -> list[tuple[list[int], list[int]]]:
        """Per axis, the plausible scores (lowest, highest) of the customers at ``at``."""
        ranges: list[tuple[list[int], list[int]]] = []
        for axis in self.axes:
            thr = np.asarray(axis.thresholds, dtype=np.float64)
            values = self._values(axis, cols, asof_ms)[at]
            if axis.name == "r":
                exact = (axis.bands - np.searchsorted(thr, values, side="right")).tolist()
                ranges.append((exact, exact))
                continue
            up = 1 + np.searchsorted(thr * (1 + self.hysteresis), values, side="right")
            down = 1 + np.searchsorted(thr * (1 - self.hysteresis), values, side="right")
            ranges.append((up.tolist(), down.tolist()))
        return ranges

    def _holds(self, prev: str, ranges: list[tuple[list[int], list[int]]], j: int) -> bool:
        """Segment ``prev`` owns a cell within the plausible scores of customer ``j``."""
        spans = [range(lo[j], hi[j] + 1) for lo, hi in ranges]
        return any(self._cells.get(c) == prev for c in itertools.product(*spans))

    def settle(
        self,
        found: np.ndarray,
        active: np.ndarray,
        starts: np.ndarray,
        stored: Sequence[str],
        cols: Columns,
        asof_ms: np.ndarray,
    ) -> np.ndarray:
        """The keys of a run of evaluation points, several per customer in time order
        (``segments.fold``), with the margin applied as :meth:`classify` applies it one
        point at a time: each point's current key is the settled key of the point
        before it (``stored`` for each customer's first point, at ``starts``).

        ``found`` is :meth:`classify` without current keys; ``active``: customers with
        purchases (the others are ``NONE``, as the engine masks them).
        """
        if not self.ranked:
            return np.where(active, found, NONE)
        raw = found.tolist()
        act = active.tolist()
        first = dict(zip(starts.tolist(), stored, strict=True))
        ranges: list[tuple[list[int], list[int]]] | None = None
        out = np.empty(len(raw), dtype=object)
        prev = NONE
        for j, key in enumerate(raw):
            prev = first.get(j, prev)
            if key != prev and prev != NONE:
                if ranges is None:
                    ranges = self._margins(cols, asof_ms, slice(None))
                if self._holds(prev, ranges, j):
                    key = prev
            prev = key if act[j] else NONE
            out[j] = prev
        return out

    def recency_edges_ms(self) -> tuple[int, ...]:
        r = next((a for a in self.axes if a.name == "r"), None)
        return tuple(r.thresholds) if r is not None and r.thresholds else ()

    def window_edges_ms(self) -> tuple[int, ...]:
        edges = [a.window_ms for a in self.axes if a.window_ms is not None]
        edges += [2 * a.window_ms for a in self.axes if a.name == "g" and a.window_ms]
        return tuple(edges)

    def due_ms(self, cols: Columns, cursor: np.ndarray) -> np.ndarray | None:
        """Per customer, the next instant a cadence or P(alive) axis crosses a cut."""
        return timed_due(self.time_edges(), cols, cursor)

    def time_edges(self) -> list[TimeEdges]:
        """Its cadence and P(alive) axes that can score, with the values at which time
        alone moves a customer on each."""
        return [
            TimeEdges(a.name, self._time_edges(a), a.model)
            for a in self.axes
            if a.name in TIME_AXES and a.ready and a.thresholds
        ]

    def _time_edges(self, axis: Axis) -> tuple[int, ...]:
        """The values at which time alone can move a customer on ``axis``: its cuts and,
        with hysteresis, the cuts moved by the margin (where ``_stick`` lets go; the same
        float products, so the same integers)."""
        cuts = axis.thresholds or ()
        if not self.hysteresis:
            return cuts
        h = self.hysteresis
        shifted = {math.ceil(float(t) * (1 + h)) for t in cuts}
        shifted |= {math.ceil(float(t) * (1 - h)) for t in cuts}
        return tuple(sorted(set(cuts) | shifted))

    def describe(self) -> str:
        cells = ";".join(f"{''.join(map(str, c))}={k}" for c, k in sorted(self._cells.items()))
        axes = ":".join(a.describe() for a in self.axes)
        return f"{self.name}:grid:{axes}:h{self.hysteresis:g}:{cells}"
