"""Fixed bucketings of the int64 value axis, shared by every quantile summary.

A summary (:mod:`segments.sketch`) is only as exact as its bucketing, and only
mergeable and deletable if every worker puts a value in the very same bucket: the
bucket edges are computed in exact integer arithmetic here, the same on every
machine and numpy version, and ``Buckets.describe()`` belongs in the rules version
(:func:`segments.quantiles.layout` puts it there).
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache
from typing import Literal, cast

import numpy as np
import numpy.typing as npt

__all__ = ["ZERO_BUCKET", "Buckets", "as_int64"]

_I64_MIN = int(np.iinfo(np.int64).min)
_I64_MAX = int(np.iinfo(np.int64).max)

ZERO_BUCKET = 0
"""Index of the bucket of log bucketing that holds every value ≤ 0 (representative 0).

Positive values get indices 1, 2, …, increasing with the value, so bucket order is
value order for both kinds of bucketing.
"""

_MIN_ACCURACY = Fraction(1, 10_000)
"""Finest relative accuracy allowed: the edge table has about ln(2^63)/(2a) entries
(182k at 1e-4) and so does, at worst, a summary."""


@cache
def _log_edges(a: Fraction) -> list[int]:
    """:func:`_log_table`'s upper edges as Python ints, for one value at a time."""
    return cast(list[int], _log_table(a)[0].tolist())  # int64 edges: Python ints


@cache
def _log_table(a: Fraction) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive upper edges and representatives of the positive log buckets 1, 2, ….

    DDSketch's buckets ``(γ^(k-1), γ^k]`` with ``γ = (1+a)/(1-a)`` guarantee that
    their *real* midpoint ``2γ^k/(γ+1)`` is within ``a`` of every value in the bucket.
    Our values and representatives are integers, and rounding that midpoint can cost
    up to half a unit more (a bucket holding exactly 70 and 71 at ``a = 0.01`` has no
    integer within 1% of both). So the edges are laid on the integers instead, with
    the same ``γ``: starting at ``lo``, the representative is the largest integer
    within ``a`` above ``lo`` (``rep = lo + ⌊a·lo⌋``) and the bucket runs up to the
    largest ``hi`` still within ``a`` below ``rep`` (``hi = ⌊rep/(1-a)⌋``). Hence every
    integer ``x`` in ``[lo, hi]`` has ``|rep − x| ≤ a·x`` exactly, ``hi/lo ≤ γ`` (the
    bucket is no wider than DDSketch's, so there are no more of them: 2,050 for
    ``a = 0.01`` over all of int64), and every integer below ``(1-a)/a`` is its own
    bucket, so small counts are exact.

    Computed in exact integer arithmetic from a rational ``a``: the table, and so every
    bucket index, is the same on every machine and numpy version, which the delta
    scheme needs (a value must leave the very bucket another worker added it to).
    """
    p, q = a.numerator, a.denominator
    his: list[int] = []
    reps: list[int] = []
    lo = 1
    while lo <= _I64_MAX:
        rep = min(lo + lo * p // q, _I64_MAX)
        hi = min(rep * q // (q - p), _I64_MAX)
        his.append(hi)
        reps.append(rep)
        lo = hi + 1
    his_arr = np.array(his, dtype=np.int64)
    reps_arr = np.array(reps, dtype=np.int64)
    his_arr.setflags(write=False)  # cached and shared: nobody may edit it in place
    reps_arr.setflags(write=False)
    return his_arr, reps_arr


def as_int64(values: np.ndarray | Sequence[int], what: str) -> npt.NDArray[np.int64]:
    """``values`` as a 1-D int64 array; floats and bools are a caller's bug, not data."""
    arr = np.asarray(values)
    if arr.size == 0 and arr.dtype.kind == "f":  # np.asarray([]) is float64
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{what} must be integers (fixed-point units, ms), got {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {arr.shape}")
    return arr.astype(np.int64, casting="safe", copy=False)


@dataclass(frozen=True, slots=True)
class Buckets:
    """A fixed bucketing of int64 values; build it with ``Buckets.log`` or ``Buckets.linear``.

    Both kinds are monotone (a larger value never lands in a lower bucket), which is
    what lets a quantile be read off cumulative bucket counts. Exactly one of
    ``relative_accuracy`` (log) and ``width`` (linear) is set.
    """

    kind: Literal["log", "linear"]
    relative_accuracy: Fraction | None = None
    width: int | None = None
    _edges: list[int] = field(
        default_factory=list, init=False, repr=False, compare=False, hash=False
    )
    """Log buckets: :func:`_log_edges` of the accuracy, held here so that
    :meth:`index_one` (once per customer whose spend moved, on every commit) skips the
    ``@cache`` lookup, which hashes a ``Fraction`` (a modular inverse: ~a third of the
    call). Not part of the value: equality and hashing ignore it."""

    def __post_init__(self) -> None:
        if self.kind == "log":
            a = self.relative_accuracy
            if not isinstance(a, Fraction) or self.width is not None:
                raise TypeError("log buckets take a Fraction relative_accuracy and no width")
            if not _MIN_ACCURACY <= a < 1:
                raise ValueError(f"relative accuracy must be in [{_MIN_ACCURACY}, 1), got {a}")
            object.__setattr__(self, "_edges", _log_edges(a))  # frozen: set once, here
        elif self.kind == "linear":
            w = self.width
            if not isinstance(w, int) or isinstance(w, bool) or self.relative_accuracy is not None:
                raise TypeError("linear buckets take an int width and no relative_accuracy")
            if w < 1:
                raise ValueError(f"bucket width must be ≥ 1, got {w}")
        else:
            raise ValueError(f"unknown bucketing kind {self.kind!r}")

    @classmethod
    def log(cls, relative_accuracy: float | str | Fraction = 0.01) -> Buckets:
        """Logarithmic buckets for positive money (fixed-point units) and counts.

        Every positive integer ``x`` is represented by ``value(index(x))`` within
        ``relative_accuracy·x``; values ≤ 0 share ``ZERO_BUCKET`` (representative 0).
        A float is read through its shortest decimal text (0.01 means exactly 1/100),
        so the edges do not depend on binary rounding.
        """
        a = relative_accuracy
        if isinstance(a, float):
            a = str(a)
        return cls("log", relative_accuracy=Fraction(a))

    @classmethod
    def linear(cls, width: int) -> Buckets:
        """Buckets ``[i·width, (i+1)·width)`` for times, e.g. epoch ms with width one day.

        Index ``i = ⌊value / width⌋`` (floor, so times before 1970 work too); the
        representative is the bucket's middle, within ``width // 2`` of every value in it.
        """
        return cls("linear", width=operator.index(width))

    def index(self, values: np.ndarray | Sequence[int]) -> np.ndarray:
        """Bucket index of each value (int64 in, int64 out), vectorised."""
        x = as_int64(values, "values")
        if self.kind == "linear":
            return np.floor_divide(x, np.int64(cast(int, self.width)))  # linear: set
        his, _ = _log_table(self._accuracy)
        idx = np.searchsorted(his, x, side="left").astype(np.int64) + 1
        return np.where(x > 0, idx, np.int64(ZERO_BUCKET))

    def index_one(self, value: int) -> int:
        """:meth:`index` of one Python int, without numpy (the same bucket, exactly)."""
        if self.kind == "linear":
            return value // cast(int, self.width)
        if value <= 0:
            return ZERO_BUCKET
        return bisect.bisect_left(self._edges, value) + 1

    def value(self, index: int) -> int:
        """The integer that represents bucket ``index``: what ``quantiles`` returns for it.

        Raises ``ValueError`` for an index no int64 value maps to (a corrupt summary).
        """
        i = operator.index(index)
        if self.kind == "linear":
            w = self._width
            lo, hi = max(i * w, _I64_MIN), min(i * w + w - 1, _I64_MAX)
            if lo > hi:
                raise ValueError(f"no int64 value falls in linear bucket {i} (width {w})")
            return lo + (hi - lo + 1) // 2
        return self._log_edge(i, 1)

    def upper(self, index: int) -> int:
        """The largest integer in bucket ``index`` (its inclusive upper edge).

        A cut point "above the q-quantile" is placed here, not at the representative,
        so that the band above holds only customers above the whole bucket: "top 1 %"
        then never holds more than 1 %, whatever the bucket's width.
        """
        i = operator.index(index)
        if self.kind == "linear":
            return min(i * self._width + self._width - 1, _I64_MAX)
        return self._log_edge(i, 0)

    def _log_edge(self, i: int, column: int) -> int:
        """Log bucket ``i``'s upper edge (column 0) or representative (1); the zero
        bucket's is 0."""
        if i == ZERO_BUCKET:
            return 0
        table = _log_table(self._accuracy)[column]
        if not 1 <= i <= table.size:
            raise ValueError(f"no int64 value falls in log bucket {i} (1..{table.size})")
        return int(table[i - 1])

    def describe(self) -> str:
        """A canonical text of the bucketing, to hash into a rules version."""
        if self.kind == "linear":
            return f"linear:width={self.width}"
        return f"log:a={self.relative_accuracy}:int-edges"

    @property
    def _accuracy(self) -> Fraction:
        return cast(Fraction, self.relative_accuracy)  # set for "log" (__post_init__)

    @property
    def _width(self) -> int:
        return cast(int, self.width)  # set for "linear" (__post_init__)
