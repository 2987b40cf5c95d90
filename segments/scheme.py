"""What a segment scheme is: vectorised scores and a classifier, plus its time edges.

A scheme never looks at a clock. It is asked "which segment at time ``asof``?" for
a batch of customers, and declares the recency edges (elapsed times since the last
purchase at which its answer can change) so the engine can compute due times.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

import numpy as np

from segments.model import NONE, Columns

__all__ = ["Scheme"]


class Scheme(ABC):
    """Base of every scheme. Subclasses set ``name`` and ``labels`` (key -> label)."""

    name: str
    labels: Mapping[str, str]

    def label(self, key: str) -> str:
        """The segment's label; a key these rules no longer define (a customer moving out
        of a segment a rules change renamed or removed) is its own label: the old file's
        label is gone, and a sweep must not fail on it."""
        return "无" if key == NONE else self.labels.get(key, key)

    @abstractmethod
    def scores(self, cols: Columns, asof_ms: np.ndarray) -> dict[str, np.ndarray]:
        """Per-axis integer scores at ``asof_ms`` (one array per axis)."""

    @abstractmethod
    def classify(self, cols: Columns, asof_ms: np.ndarray) -> np.ndarray:
        """Segment keys (object array) at ``asof_ms``, one per customer."""

    @abstractmethod
    def recency_edges_ms(self) -> tuple[int, ...]:
        """Elapsed times since the last purchase at which the classification may change."""

    def due_ms(self, cols: Columns, cursor: np.ndarray) -> np.ndarray | None:
        """Per-customer instants after ``cursor`` when time alone changes the answer,
        besides the global recency edges (None: there are none)."""
        return None

    def window_edges_ms(self) -> tuple[int, ...]:
        """Rolling windows this scheme reads (their expiries are due times too)."""
        return ()

    @abstractmethod
    def describe(self) -> str:
        """A canonical text of the rules; hashed into ``rules_version``."""
