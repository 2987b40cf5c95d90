"""When time alone next moves a customer: the earliest due time after their cursor.

The rounds catch every customer up to each due time before an event or the timer
(:meth:`segments.engine.Engine.next_due`), and the store schedules each customer at
theirs, so the instant is one computation with one "never" value (:data:`NEVER`),
kept apart from the engine that applies events: it reads states and never changes
them. The scheme set's due-time inputs (recency edges, rolling windows, merged timed
axes, other schemes with their own ``Scheme.due_ms``) are the engine's, derived once
from its schemes and handed in as they are. The fold walks the same due times per
customer its own way (:mod:`segments.fold_walk`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from segments import windows
from segments.grid import TimeEdges, timed_due
from segments.model import NEVER, Columns, CustomerState
from segments.scheme import Scheme

__all__ = ["next_due"]


def next_due(
    states: Sequence[CustomerState],
    recency_edges: np.ndarray,
    timed_other: Sequence[Scheme],
    time_edges: Sequence[TimeEdges],
    window_edges: Sequence[int],
) -> np.ndarray:
    """Earliest event time after each cursor at which something changes by time alone.

    That is a recency edge of some scheme (only for customers with purchases), a
    purchase day leaving a rolling window, or the end of a held refund's wait.
    ``NEVER`` when there is none.

    ``recency_edges``: every scheme's, sorted (int64); ``timed_other``: timed schemes
    that are not grids, asked one by one; ``time_edges``: the grid schemes' timed axes,
    merged (:func:`segments.grid.merged_time_edges`); ``window_edges``: every rolling
    window a scheme reads.
    """
    n = len(states)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    states = windows.Batch(states)  # nothing changes while the due times are found
    cursor = np.fromiter((s.cursor_ms for s in states), np.int64, n)
    if recency_edges.size:
        last = np.fromiter((s.last_ms for s in states), np.int64, n)
        bought = np.fromiter((s.frequency > 0 for s in states), bool, n)
        cand = last[:, None] + recency_edges[None, :]
        cand = np.where(cand > cursor[:, None], cand, NEVER)
        due = np.where(bought, cand.min(axis=1), NEVER)
    else:
        due = np.full(n, NEVER, dtype=np.int64)
    cols = None
    for scheme in timed_other:
        cols = cols or Columns.of(states)
        extra = scheme.due_ms(cols, cursor)
        if extra is not None:
            due = np.minimum(due, np.where(cols.frequency > 0, extra, NEVER))
    if time_edges:
        cols = cols or Columns.of(states)
        extra = timed_due(time_edges, cols, cursor)
        if extra is not None:
            due = np.minimum(due, np.where(cols.frequency > 0, extra, NEVER))
    for i, s in enumerate(states):
        if s.held:
            due[i] = min(int(due[i]), max(min(h.until_ms for h in s.held), s.cursor_ms + 1))
    if window_edges:
        due = np.minimum(due, windows.next_expiries(states, window_edges))
    return due
