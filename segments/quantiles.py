"""Quantile cut points: which populations are summarised, and cut points from summaries.

A quantile axis ranks a customer against the current customer population, so every
population a rule needs (lifetime F, lifetime M, last purchase time for R, or F/M over
a window) is kept as a mergeable summary (:mod:`segments.sketch`) per partition,
updated by exact deltas in the same atomic commit as the customer state. A refresh
merges all partitions' summaries and turns each scheme's quantiles into thresholds: a
new **cut-point version**, recorded in the transitions it causes.

The population is the customers with at least one order still holding money
(frequency > 0), the ones the schemes rank. Each customer's value is read from their
state at their own cursor, so the value removed on the next update is exactly the one
added on the last.

Summaries belong to a rules version. Each is kept under a name that carries the rules
version (which hashes the bucketings too, :func:`layout`), and a customer counts in it
only once evaluated under those rules (their stamp says so). A rules change, or a new
bucketing, therefore starts empty summaries that fill as the rules-change sweep, events
and the timer re-evaluate customers, never mixing a value added under one bucketing with
one removed under another (which drove counts negative), and never leaving out the
customers of a population that did not exist before (a new window, say). A rules
version in force again after others (a rollback) starts a new **era** with summaries of
its own (:class:`segments.cut_points.Era`): its first era's summaries still hold every
customer as they were.

Because of that, a cut-point version records the quantile axes its thresholds were made
for (:mod:`segments.cut_points`: ``axes_of``, ``CutPoints.made_for``): when rules change
a quantile axis the version in force is not reused for it. The new rules' first version
is computed instead from an exact pass over the customers' states
(:class:`ExactSummaries`, the same values the summaries hold, summarised with
:mod:`segments.sketch`), before anyone is classified under them
(:mod:`stream.apply.rules_change`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

import numpy as np

from schemas.times import DAY_MS
from segments import sketch
from segments.cut_points import CutPoints, Era, axes_of
from segments.model import CustomerState
from segments.scheme import Scheme
from segments.value import ValueModel
from segments.windows import windowed_values

__all__ = [
    "COUNT_ACCURACY",
    "MONEY_ACCURACY",
    "ExactSummaries",
    "Population",
    "Populations",
    "counted",
    "generation",
    "layout",
]


class _Counts(Protocol):
    """What :meth:`Populations.of` reads of an engine (no import: the engine imports us)."""

    @property
    def schemes(self) -> Sequence[Scheme]: ...
    @property
    def rules_version(self) -> str: ...
    @property
    def summary_since(self) -> int | None: ...


MONEY_ACCURACY = Fraction(1, 5000)
"""Relative accuracy of money summaries (0.02 %): customers whose amounts differ by less
than about 0.04 % share a bucket, so a cut can only fall between buckets and these are
the "ties" of the tier guarantee (:meth:`Populations.cut_points`). Fine enough that a
bucket at a pyramid cut holds about a dozen customers of 100,000 (1 % buckets held ~650
at the median), coarse enough to keep a summary bounded: at most one field per bucket
the spends reach, ~17,000 per partition for lognormal spends over 4 partitions at 1M
customers (~1 MB of Redis at ~57 B a field; 1 % buckets: ~480)."""
COUNT_ACCURACY = Fraction(1, 100)
"""Relative accuracy of order-count summaries (1 %): exact up to 98 orders, which is
every count in practice, so a finer one would change nothing."""


def counted(state: CustomerState, rules_version: str, since: int | None = None) -> bool:
    """Does ``state`` count in the summaries of ``rules_version``'s era begun at cut
    version ``since`` (:class:`Era`)? Once it has an order holding money and was
    evaluated under those rules (its stamp, ``rules/cut`` as
    :func:`segments.causes.stamp_of` writes it, starts with them) at a cut version of
    this era: every such evaluation goes through the commit that adds it to them.
    ``since`` None: the unnamed generation of a document without eras (any cut)."""
    if state.frequency <= 0:
        return False
    rules, _, cut = state.stamp.partition("/")
    if rules != rules_version:
        return False
    return since is None or (cut.isdigit() and int(cut) >= since)


@dataclass(frozen=True, slots=True)
class Population:
    """One summarised quantity: an axis, over a window or the whole history, kept under
    the generation ``generation`` (rules version and era, :func:`generation`; part of its
    name, so of its Redis key)."""

    axis: str
    window_ms: int | None = None
    generation: str = ""

    @property
    def quantity(self) -> str:
        """What is summarised, whatever the rules version: ``m``, ``m@<window ms>``."""
        return self.axis if self.window_ms is None else f"{self.axis}@{self.window_ms}"

    @property
    def name(self) -> str:
        """The summary's name (its Redis key's suffix): quantity and rules version."""
        return f"{self.quantity}/{self.generation}" if self.generation else self.quantity

    @property
    def buckets(self) -> sketch.Buckets:
        if self.axis in ("r", "t"):  # last purchase time / span, by day: cuts to the day
            return sketch.Buckets.linear(DAY_MS)
        if self.axis == "f":
            return sketch.Buckets.log(COUNT_ACCURACY)
        return sketch.Buckets.log(MONEY_ACCURACY)  # net spend, average spend: money

    def values(self, states: Sequence[CustomerState]) -> np.ndarray:
        n = len(states)
        if self.axis == "r":
            return np.fromiter((s.last_ms for s in states), np.int64, n)
        if self.axis == "t":
            return np.fromiter(
                (s.last_ms - s.first_ms if s.first_ms is not None else 0 for s in states),
                np.int64,
                n,
            )
        if self.axis == "a":
            return np.fromiter((s.monetary // max(s.frequency, 1) for s in states), np.int64, n)
        if self.window_ms is not None:
            return windowed_values(states, self.axis, self.window_ms)
        attr = "frequency" if self.axis == "f" else "monetary"
        return np.fromiter((getattr(s, attr) for s in states), np.int64, n)


def generation(rules_version: str, since: int | None) -> str:
    """The summaries' generation as named in their keys: ``<rules>+<since>`` for an
    era (:class:`Era`), the bare rules version for a document without eras (the names
    summaries had before eras, so an upgrade keeps reading them)."""
    return rules_version if since is None else f"{rules_version}+{since}"


def _quantities(schemes: Sequence[Scheme]) -> list[Population]:
    found = {
        Population(a.name, a.window_ms)
        for s in schemes
        for a in getattr(s, "axes", ())
        if a.quantiles is not None
    }
    return sorted(found, key=lambda p: p.quantity)


def layout(schemes: Sequence[Scheme]) -> str:
    """The summaries the schemes need and their bucketings, as text for the rules
    version: a new bucketing is a new rules version, hence new summaries (module doc)."""
    return ";".join(f"{p.quantity}={p.buckets.describe()}" for p in _quantities(schemes))


class Populations:
    """The populations the schemes' quantile axes need under ``rules_version`` (the
    engine's) in its era begun at ``since`` (:class:`Era`), and their summary deltas."""

    def __init__(
        self, schemes: Sequence[Scheme], rules_version: str, since: int | None = None
    ) -> None:
        self.rules_version = rules_version
        self.since = since
        gen = generation(rules_version, since)
        self.items = tuple(Population(p.axis, p.window_ms, gen) for p in _quantities(schemes))

    @classmethod
    def of(cls, engine: _Counts) -> Populations:
        """The populations ``engine`` counts customers into: its rules, its era."""
        return cls(engine.schemes, engine.rules_version, engine.summary_since)

    @property
    def names(self) -> tuple[str, ...]:
        """The summaries' names (their keys' suffixes)."""
        return tuple(p.name for p in self.items)

    def era(self, since: int) -> Era:
        """The era of these rules begun at cut version ``since``, with its summaries."""
        gen = generation(self.rules_version, since)
        return Era(
            self.rules_version,
            since,
            tuple(Population(p.axis, p.window_ms, gen).name for p in self.items),
        )

    def __bool__(self) -> bool:
        return bool(self.items)

    def snapshot(self, states: Sequence[CustomerState]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Each population's (values, present) for ``states``, to diff after an update;
        present: :func:`counted` in this rules version's era."""
        rv, since = self.rules_version, self.since
        present = np.fromiter((counted(s, rv, since) for s in states), bool, len(states))
        return {p.name: (p.values(states), present) for p in self.items}

    def deltas(
        self,
        before: Mapping[str, tuple[np.ndarray, np.ndarray]],
        after: Mapping[str, tuple[np.ndarray, np.ndarray]],
    ) -> dict[str, dict[int, int]]:
        """Per population, the net bucket count changes (empty ones omitted)."""
        out = {}
        for p in self.items:
            old, old_in = before[p.name]
            new, new_in = after[p.name]
            d = sketch.deltas(p.buckets, old, old_in, new, new_in)
            if d:
                out[p.name] = d
        return out

    def cut_points(
        self,
        schemes: Sequence[Scheme],
        summaries: Mapping[str, Mapping[int, int]],
        now_ms: int,
        version: int,
        population: int = 0,
    ) -> CutPoints:
        """Thresholds of every quantile axis from the merged summaries at ``now_ms``.

        A scheme whose population is empty gets no thresholds (it ranks nobody yet).

        F and M: a cut at quantile ``q`` of ``n`` customers aims at putting the
        ``n − k`` customers of rank above ``k = max(1, ⌈q·n⌉)`` (ascending, as
        :func:`segments.sketch.quantile_buckets` ranks) in the band above. It is placed
        just above the summary bucket holding rank ``k`` (threshold: the bucket's upper
        edge + 1), so the band above never holds more than its share; it holds fewer by
        the customers of that bucket ranked above ``k``, at most the bucket's count − 1.
        That is the tier guarantee: **each cut is exact in rank but for the customers
        tied with the one at the cut, who all go to the band below**. Ties are equal
        values, and for money values in one bucket (within ~0.04 % of each other,
        :data:`MONEY_ACCURACY`); counts below 99 are exact. A band between two cuts is
        then off its share by at most the larger of the two shortfalls.

        Why not the nearer side of the straddling bucket: it would over-fill a top band
        ("top 1 %" is a promise to campaigns with a budget), and on order counts, where
        a third of customers share F = 1, it would move whole score bands.

        R: the q-quantile of elapsed time is ``now`` minus the (1 − q)-quantile of the
        last purchase times (to the day); customers at most that old rank higher.
        """
        by_quantity = {p.quantity: p for p in self.items}
        thresholds: dict[str, dict[str, tuple[int, ...]]] = {}
        for s in schemes:
            axes: dict[str, tuple[int, ...]] = {}
            for a in getattr(s, "axes", ()):
                if a.quantiles is None:
                    continue
                pop = by_quantity[Population(a.name, a.window_ms).quantity]
                summary = summaries.get(pop.name) or {}
                if sketch.size(summary) == 0:
                    break
                if a.name == "r":  # elapsed since the last purchase
                    lasts = sketch.quantiles(pop.buckets, summary, [1 - q for q in a.quantiles])
                    axes["r"] = tuple(sorted(max(now_ms - t, 0) + 1 for t in lasts))
                else:  # above the whole bucket holding rank k: never over-fills
                    found = sketch.quantile_buckets(pop.buckets, summary, list(a.quantiles))
                    axes[a.name] = tuple(pop.buckets.upper(b) + 1 for b in found)
            else:
                if axes:
                    thresholds[s.name] = axes
        return CutPoints(version, now_ms, thresholds, population, axes=axes_of(schemes))


class ExactSummaries:
    """The summaries of ``populations`` built from customer states directly, a chunk at
    a time (:meth:`add`): what the incremental summaries would hold once every customer
    was evaluated under these rules, without waiting for that.

    Every customer with frequency > 0 counts, whatever their stamp (:func:`counted` is
    about which rules an evaluation ran under; here the caller has just caught each
    state up under the new rules, :meth:`segments.engine.Engine.reevaluate`, so the
    values are the ones that evaluation commits). Pure: the walk is the caller's.
    """

    def __init__(self, populations: Populations) -> None:
        self.populations = populations
        self.summaries: dict[str, dict[int, int]] = {p.name: {} for p in populations.items}
        self.customers = 0
        """Customers counted (frequency > 0): the version's population."""

    def add(self, states: Sequence[CustomerState]) -> None:
        ranked = [s for s in states if s.frequency > 0]
        self.customers += len(ranked)
        if not ranked:
            return
        for p in self.populations.items:
            into = self.summaries[p.name]
            for bucket, n in sketch.summarize(p.buckets, p.values(ranked)).items():
                into[bucket] = into.get(bucket, 0) + n

    def cut_points(
        self, schemes: Sequence[Scheme], now_ms: int, version: int, model: ValueModel | None
    ) -> CutPoints:
        """The version these summaries give at ``now_ms`` (as a refresh computes it),
        beginning an era of these rules (:class:`Era`): the rules-change sweep fills the
        era's summaries from empty, and earlier eras' stamps don't count in them."""
        cuts = self.populations.cut_points(
            schemes, self.summaries, now_ms, version, population=self.customers
        )
        return CutPoints(
            cuts.version,
            cuts.at_ms,
            cuts.thresholds,
            cuts.population,
            model,
            cuts.axes,
            self.populations.era(version),
        )
