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
``Buckets.describe()`` belongs in the rules version (the bucketings: :mod:`segments.buckets`;
the rules version hashes them through :func:`segments.quantiles.layout`, and summaries are
kept per rules version, so a new bucketing starts new summaries).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence

import numpy as np

from segments.buckets import ZERO_BUCKET, Buckets, as_int64

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


def _as_mask(values: np.ndarray | Sequence[bool], what: str, n: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.size == 0:
        arr = arr.astype(bool)
    if arr.dtype != np.bool_:
        raise TypeError(f"{what} must be booleans, got {arr.dtype}")
    if arr.shape != (n,):
        raise ValueError(f"{what} has shape {arr.shape}, expected ({n},)")
    return arr


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
    old_v = as_int64(old, "old")
    new_v = as_int64(new, "new")
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
