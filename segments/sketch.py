"""Mergeable, deletable quantile summaries: cut points at population quantiles.

A scheme may put an axis's cut points at population quantiles (the customer
pyramid cuts monetary at the 50th, 80th and 99th percentiles). The population
changes all the time and is split over Kafka partitions, so the summary behind those
cut points has to be:

* a plain mapping ``bucket index -> count`` (ints), so each partition can keep it as
  a Redis hash and update it with HINCRBY in the same atomic write as the customer
  states;
* updatable by *deltas*, removals included: a customer whose value moves from ``a``
  to ``b`` is −1 in ``a``'s bucket and +1 in ``b``'s. Counts are exact, so after any
  sequence of updates they equal the counts of the current population;
* mergeable by adding counts: the merge of the partitions' summaries *is* the summary
  of their union, bucket by bucket, so a refresh can merge them in any order;
* queried with a stated error bound (see ``quantiles``).

That rules out sampling sketches (KLL, t-digest): they cannot delete, and their
merges are not exact. What is left is a fixed bucketing of the value axis, with
every bucket's count kept exactly; the only error is the width of a bucket.

Typical use, per batch of customers whose value moved from ``old`` to ``new``::

    d = deltas(buckets, old, old_present, new, new_present)   # HINCRBY each field
    ...
    summary = merge(*partition_hashes)                        # periodic refresh
    cuts = quantiles(buckets, summary, [0.5, 0.8, 0.99])

The bucketing must be identical wherever a value is added or removed (a value removed
under another bucketing leaves a stale +1 behind and drives some bucket negative), so
``Buckets.describe()`` belongs in the rules version.
"""

from __future__ import annotations

import bisect
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import Literal, cast

import numpy as np

__all__ = [
    "ZERO_BUCKET",
    "Buckets",
    "deltas",
    "merge",
    "quantile_buckets",
    "quantiles",
    "size",
    "summarize",
]

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
    return _log_table(a)[0].tolist()


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


def _as_int64(values: np.ndarray | Sequence[int], what: str) -> np.ndarray:
    """``values`` as a 1-D int64 array; floats and bools are a caller's bug, not data."""
    arr = np.asarray(values)
    if arr.size == 0 and arr.dtype.kind == "f":  # np.asarray([]) is float64
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{what} must be integers (fixed-point units, ms), got {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {arr.shape}")
    return arr.astype(np.int64, casting="safe", copy=False)


def _as_mask(values: np.ndarray | Sequence[bool], what: str, n: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.size == 0:
        arr = arr.astype(bool)
    if arr.dtype != np.bool_:
        raise TypeError(f"{what} must be booleans, got {arr.dtype}")
    if arr.shape != (n,):
        raise ValueError(f"{what} has shape {arr.shape}, expected ({n},)")
    return arr


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

    def __post_init__(self) -> None:
        if self.kind == "log":
            a = self.relative_accuracy
            if not isinstance(a, Fraction) or self.width is not None:
                raise TypeError("log buckets take a Fraction relative_accuracy and no width")
            if not _MIN_ACCURACY <= a < 1:
                raise ValueError(f"relative accuracy must be in [{_MIN_ACCURACY}, 1), got {a}")
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
        x = _as_int64(values, "values")
        if self.kind == "linear":
            return np.floor_divide(x, np.int64(self.width))
        his, _ = _log_table(self._accuracy)
        idx = np.searchsorted(his, x, side="left").astype(np.int64) + 1
        return np.where(x > 0, idx, np.int64(ZERO_BUCKET))

    def index_one(self, value: int) -> int:
        """:meth:`index` of one Python int, without numpy (the same bucket, exactly)."""
        if self.kind == "linear":
            return value // cast(int, self.width)
        if value <= 0:
            return ZERO_BUCKET
        return bisect.bisect_left(_log_edges(self._accuracy), value) + 1

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
        if i == ZERO_BUCKET:
            return 0
        _, reps = _log_table(self._accuracy)
        if not 1 <= i <= reps.size:
            raise ValueError(f"no int64 value falls in log bucket {i} (1..{reps.size})")
        return int(reps[i - 1])

    def upper(self, index: int) -> int:
        """The largest integer in bucket ``index`` (its inclusive upper edge).

        A cut point "above the q-quantile" is placed here, not at the representative,
        so that the band above holds only customers above the whole bucket: "top 1 %"
        then never holds more than 1 %, whatever the bucket's width.
        """
        i = operator.index(index)
        if self.kind == "linear":
            return min(i * self._width + self._width - 1, _I64_MAX)
        if i == ZERO_BUCKET:
            return 0
        his, _ = _log_table(self._accuracy)
        if not 1 <= i <= his.size:
            raise ValueError(f"no int64 value falls in log bucket {i} (1..{his.size})")
        return int(his[i - 1])

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


def summarize(buckets: Buckets, values: np.ndarray | Sequence[int]) -> dict[int, int]:
    """The summary of a whole population (to seed or rebuild a partition's hash)."""
    keys, counts = np.unique(buckets.index(values), return_counts=True)
    return dict(zip(keys.tolist(), counts.tolist(), strict=True))


def deltas(
    buckets: Buckets,
    old: np.ndarray | Sequence[int],
    old_present: np.ndarray | Sequence[bool],
    new: np.ndarray | Sequence[int],
    new_present: np.ndarray | Sequence[bool],
) -> dict[int, int]:
    """Net per-bucket count change when a batch of customers moves from ``old`` to ``new``.

    Row ``i`` is one move: ``old[i]`` leaves the population if ``old_present[i]`` (a
    customer before their first purchase was not in it), ``new[i]`` joins it if
    ``new_present[i]`` (a fully refunded customer may leave it). A customer may appear
    in several rows if the rows chain (one row's ``new`` is the next one's ``old``).
    Buckets whose changes cancel are omitted, so an unchanged bucket costs no write.
    Apply with HINCRBY per field, or locally with ``merge(summary, d)``.
    """
    old_v = _as_int64(old, "old")
    new_v = _as_int64(new, "new")
    n = old_v.size
    if new_v.size != n:
        raise ValueError(f"old has {n} values but new has {new_v.size}")
    old_m = _as_mask(old_present, "old_present", n)
    new_m = _as_mask(new_present, "new_present", n)
    if n <= SMALL_DELTAS:
        return _deltas_small(
            buckets, old_v.tolist(), old_m.tolist(), new_v.tolist(), new_m.tolist()
        )
    return _deltas_numpy(buckets, old_v, old_m, new_v, new_m)


SMALL_DELTAS = 64
"""Rows up to which :func:`deltas` counts in plain Python. A live worker's batches are
small when it keeps up (a few customers per partition per fetch), and numpy's fixed
cost per call, a dozen calls per population per batch, was ~65 µs of CPU per event
at 1,000 events/s (py-spy, bench/); the loop costs ~1 µs per row."""


def _deltas_small(
    buckets: Buckets, old: list[int], old_in: list[bool], new: list[int], new_in: list[bool]
) -> dict[int, int]:
    one = buckets.index_one
    net: dict[int, int] = {}
    for v, here in zip(old, old_in, strict=True):
        if here:
            k = one(v)
            net[k] = net.get(k, 0) - 1
    for v, here in zip(new, new_in, strict=True):
        if here:
            k = one(v)
            net[k] = net.get(k, 0) + 1
    return {k: net[k] for k in sorted(net) if net[k]}


def _deltas_numpy(
    buckets: Buckets, old_v: np.ndarray, old_m: np.ndarray, new_v: np.ndarray, new_m: np.ndarray
) -> dict[int, int]:
    gone = buckets.index(old_v[old_m])
    came = buckets.index(new_v[new_m])
    keys, inverse = np.unique(np.concatenate([gone, came]), return_inverse=True)
    net = np.bincount(inverse[gone.size :], minlength=keys.size) - np.bincount(
        inverse[: gone.size], minlength=keys.size
    )
    keep = net != 0
    return dict(zip(keys[keep].tolist(), net[keep].tolist(), strict=True))


def merge(*summaries: Mapping[int, int]) -> dict[int, int]:
    """Add summaries (or deltas) bucket by bucket; zero counts are dropped.

    Merging the partitions' summaries gives exactly the summary of their union, and
    ``merge(summary, deltas(...))`` applies a batch. Keys and counts must be integers
    (decode Redis' bytes first: ``b"12"`` and ``12`` would be different buckets).

    Raises ``ValueError`` if a total is negative: a population cannot hold −1
    customers, so an update was lost or applied twice, and the quantiles would be wrong.
    """
    total: dict[int, int] = {}
    for summary in summaries:
        for key, count in summary.items():
            k = operator.index(key)
            total[k] = total.get(k, 0) + operator.index(count)
    negative = sorted((k, c) for k, c in total.items() if c < 0)
    if negative:
        raise ValueError(
            f"negative bucket counts {negative[:5]} (bucket, count): "
            "an update was lost or applied twice"
        )
    return {k: c for k, c in sorted(total.items()) if c}


def size(summary: Mapping[int, int]) -> int:
    """How many values the summary holds (the population size)."""
    return sum(merge(summary).values())


def quantiles(buckets: Buckets, summary: Mapping[int, int], qs: Sequence[float]) -> list[int]:
    """Estimated quantiles of the summarised population (see :func:`quantile_buckets`)."""
    return [buckets.value(b) for b in quantile_buckets(buckets, summary, qs)]


def quantile_buckets(
    buckets: Buckets, summary: Mapping[int, int], qs: Sequence[float]
) -> list[int]:
    """The bucket holding each quantile; :func:`quantiles` gives their representatives.

    Estimated quantiles of the summarised population, one per ``q`` in ``qs``.

    Convention (numpy's ``np.quantile(..., method="inverted_cdf")``, Hyndman & Fan
    type 1): with ``n`` values sorted ascending, the ``q``-quantile is the element of
    1-based rank ``k = max(1, ⌈q·n⌉)``, the product ``q·n`` taken in float64 just as
    numpy takes it; so ``q = 0`` is the minimum and ``q = 1`` the maximum. The answer
    is ``buckets.value(b)`` for the bucket ``b`` that holds that element.

    Guarantee, for every ``q`` and any sequence of updates and merges (counts are
    exact, so the rank-``k`` element really is in bucket ``b``); ``x`` is the exact
    quantile of the current population:

    * log buckets of accuracy ``a``: if ``x > 0``, the answer is within ``a·x`` of
      ``x`` (``|answer − x| ≤ a·x``, integers, no rounding slack); if ``x ≤ 0`` the
      answer is 0. The integers below ``(1−a)/a`` (1 to 98 at 1%) are exact.
    * linear buckets of width ``w``: within ``w // 2`` of ``x``.

    Raises ``ValueError`` for an empty summary (no quantile of nobody), a ``q``
    outside [0, 1], or a negative count (see ``merge``).
    """
    s = merge(summary)
    if not s:
        raise ValueError("empty summary: an empty population has no quantiles")
    keys = np.fromiter(s.keys(), dtype=np.int64, count=len(s))
    cumulative = np.cumsum(np.fromiter(s.values(), dtype=np.int64, count=len(s)))
    n = int(cumulative[-1])
    ranks = []
    for q in qs:
        qf = float(q)
        if not 0.0 <= qf <= 1.0:  # also rejects NaN
            raise ValueError(f"quantile must be in [0, 1], got {q!r}")
        ranks.append(max(1, math.ceil(n * qf)))
    pos = np.searchsorted(cumulative, np.array(ranks, dtype=np.int64), side="left")
    return [int(keys[p]) for p in pos.tolist()]
