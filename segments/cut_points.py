"""What a cut-point version is: one refresh's thresholds for every quantile axis, as a value.

A version is what classifying reads and what every worker, the dry run, a backfill and
the CLI pass around (the namespace's document, :meth:`CutPoints.to_json`), whereas the
populations and summaries it is computed from are the refresh's arithmetic
(:mod:`segments.quantiles`). So the value lives here, with what it records about itself:
the quantile axes its thresholds were made for (:func:`axes_of`,
:meth:`CutPoints.made_for`: a rules change to an axis doesn't reuse it) and the
summaries' generation it belongs to (:class:`Era`: rules back in force after others count
into summaries of their own).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from segments.scheme import Scheme
from segments.value import ValueModel

__all__ = ["CutPoints", "Era", "axes_of"]

AxesRecord = Mapping[str, Mapping[str, str]]
"""scheme -> axis name -> axis description (quantiles and window), of quantile axes."""


@dataclass(frozen=True, slots=True)
class Era:
    """Which summaries a rules version's customers are counted in now: its **generation**.

    A rules version can be in force more than once (rules A, then B, then A again: a
    rollback). The summaries of A's first era were frozen when B came in, still holding
    every customer at their values of then; counting A's customers into them again would
    count each one twice. So each era of a rules version has summaries of its own, named
    by (``rules``, ``since``): ``since`` is the cut-point version that began it (the one
    the rules change installed), and a customer counts in them only once evaluated under
    these rules at that version or a later one (:func:`segments.quantiles.counted`).
    Cut-point versions only grow, so a stamp of an earlier era never counts in a later
    one, and the rules-change sweep fills the new era's summaries exactly.

    ``summaries``: the era's summary names, so the next era knows which keys to delete
    (they can't be derived from another rules file's schemes).
    """

    rules: str
    since: int
    summaries: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"rules": self.rules, "since": self.since, "summaries": list(self.summaries)}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Era:
        return cls(str(doc["rules"]), int(doc["since"]), tuple(map(str, doc["summaries"])))


@dataclass(frozen=True, slots=True)
class CutPoints:
    """One version of the quantile axes' thresholds: scheme -> axis -> thresholds."""

    version: int
    at_ms: int
    thresholds: Mapping[str, Mapping[str, tuple[int, ...]]] = field(default_factory=dict)
    population: int = 0
    """How many customers the summaries held (a doubling triggers the next refresh)."""
    model: ValueModel | None = None
    """The base's BG/NBD fit (P(alive), CLV), when some scheme reads it."""
    axes: AxesRecord | None = None
    """The quantile axes the thresholds were computed for (:func:`axes_of`); None in a
    document written before this was recorded (made for unknown axes)."""
    era: Era | None = None
    """The summaries' current generation (:class:`Era`), carried from version to version
    by refreshes; None in a document written before eras (the one unnamed generation per
    rules version, until the next rules change or the next start begins an era)."""

    def since_for(self, rules_version: str) -> int | None:
        """The start of ``rules_version``'s current era, if the document records it
        (None: another rules version's era, or none recorded)."""
        return self.era.since if self.era and self.era.rules == rules_version else None

    def made_for(self, schemes: Sequence[Scheme]) -> bool:
        """Were these thresholds computed for every quantile axis of ``schemes``? Each
        scheme ranking by quantiles must find its axes, as they are now (quantiles and
        window), in the record; a removed scheme, or new cells or labels, don't matter.
        A document without the record is not (it can't say)."""
        if self.axes is None:
            return False
        return all(self.axes.get(name) == ax for name, ax in axes_of(schemes).items())

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "version": self.version,
            "at_ms": self.at_ms,
            "population": self.population,
            "thresholds": {
                s: {a: list(t) for a, t in ax.items()} for s, ax in self.thresholds.items()
            },
        }
        if self.model is not None:
            doc["model"] = self.model.to_json()
        if self.axes is not None:
            doc["axes"] = {s: dict(ax) for s, ax in self.axes.items()}
        if self.era is not None:
            doc["era"] = self.era.to_json()
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> CutPoints:
        th = doc.get("thresholds") or {}
        assert isinstance(th, Mapping)
        model = doc.get("model")
        axes = doc.get("axes")
        era = doc.get("era")
        return cls(
            version=int(doc["version"]),
            at_ms=int(doc["at_ms"]),
            thresholds={s: {a: tuple(t) for a, t in ax.items()} for s, ax in th.items()},
            population=int(doc.get("population", 0)),
            model=ValueModel.from_json(model) if isinstance(model, Mapping) else None,
            axes=(
                {str(k): {str(a): str(d) for a, d in v.items()} for k, v in axes.items()}
                if isinstance(axes, Mapping)
                else None
            ),
            era=Era.from_json(era) if isinstance(era, Mapping) else None,
        )


def axes_of(schemes: Sequence[Scheme]) -> dict[str, dict[str, str]]:
    """scheme -> axis -> description, for every quantile axis: what a version's
    thresholds are computed for (the quantiles and the window, not the thresholds)."""
    out: dict[str, dict[str, str]] = {}
    for s in schemes:
        ax = {a.name: a.describe() for a in getattr(s, "axes", ()) if a.quantiles is not None}
        if ax:
            out[s.name] = ax
    return out
