"""Does a rules file make sense? And the schemes it declares, built.

``check_rules`` reports every problem, each naming its place
(``schemes.rfm27.segments.loyal.cells: ...``): bands out of order, cell patterns that
cannot be read, cells in no segment (gaps), cells in two segments (overlaps) and
segments no cell can reach. ``rfm-stream rules check`` prints them; the worker refuses
to start on any (``checked`` raises).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from decimal import Decimal

from schemas.durations import format_duration
from schemas.money import to_units
from schemas.rules import AnyAxis, RulesError, RulesFile, SchemeSpec
from schemas.times import DAY_MS
from segments.axes import AXES
from segments.cells import MAX_BANDS, all_cells, cell_owners, format_cell
from segments.grid import Axis, GridScheme
from segments.value import ValueModel

__all__ = ["axis_specs", "build_scheme", "check_rules", "check_scheme", "checked"]

_SHOWN = 6


def axis_specs(spec: SchemeSpec) -> list[tuple[str, AnyAxis]]:
    """The declared axes, in r, f, m order."""
    return [(a, getattr(spec.axes, a)) for a in AXES if getattr(spec.axes, a) is not None]


def _fixed(axis: str, cuts: Sequence[int | Decimal]) -> tuple[int, ...]:
    return tuple(to_units(Decimal(c)) if axis in MONEY else int(c) for c in cuts)


MONEY = ("m", "a")
DURATIONS = ("r", "t")


def _show(axis: str, edge: float | int | Decimal) -> str:
    return format_duration(edge) if axis in DURATIONS and isinstance(edge, int) else str(edge)


def _axis_problems(where: str, axis: str, a: AnyAxis) -> list[str]:
    cuts: Sequence[int | Decimal] | None = a.cuts
    quantiles = a.quantiles
    if (cuts is None) == (quantiles is None):
        return [f"{where}: give either cuts (fixed) or quantiles, not both or neither"]
    edges: Sequence[float | int | Decimal] = quantiles if quantiles is not None else cuts or []
    kind = "quantiles" if quantiles is not None else "cuts"
    out: list[str] = []
    if not edges:
        out.append(f"{where}.{kind}: empty; an axis needs at least one cut point")
    if len(edges) + 1 > MAX_BANDS:
        out.append(f"{where}.{kind}: {len(edges) + 1} bands; at most {MAX_BANDS}")
    window = getattr(a, "window", None)
    if window is not None and window < DAY_MS:
        out.append(
            f"{where}.window: {format_duration(window)} is shorter than a day (windows "
            "count whole purchase days)"
        )
    if cuts is not None and axis in MONEY:
        for c in cuts:
            try:
                to_units(Decimal(c))
            except ValueError as exc:
                out.append(f"{where}.cuts: {exc}")
    for lo, hi in itertools.pairwise(edges):
        if not lo < hi:
            out.append(
                f"{where}.{kind}: bands out of order: {_show(axis, hi)} is not above "
                f"{_show(axis, lo)}"
            )
    return out


def check_scheme(name: str, spec: SchemeSpec) -> list[str]:
    where = f"schemes.{name}"
    axes = axis_specs(spec)
    if not axes:
        return [f"{where}.axes: declares no axis (r, f or m)"]
    problems: list[str] = []
    for axis, a in axes:
        problems += _axis_problems(f"{where}.axes.{axis}", axis, a)
    if problems:
        return problems  # bands unknown: the cell map can't be checked
    names = [a for a, _ in axes]
    bands = [len(a.quantiles or a.cuts or ()) + 1 for _, a in axes]
    owners, errors = cell_owners({k: s.cells for k, s in spec.segments.items()}, names, bands)
    reached = {k for keys in owners.values() for k in keys}
    for key in spec.segments:
        if key in errors and key not in reached:
            problems.append(f"{where}.segments.{key}: no cell can reach it: {errors[key]}")
        elif key in errors:
            problems.append(f"{where}.segments.{key}.cells: {errors[key]}")
    gaps = [format_cell(c) for c in all_cells(bands) if c not in owners]
    if gaps:
        shown = ", ".join(gaps[:_SHOWN]) + (
            f" and {len(gaps) - _SHOWN} more" if len(gaps) > _SHOWN else ""
        )
        cells = "cell" if len(gaps) == 1 else "cells"
        problems.append(
            f"{where}.segments: {len(gaps)} {cells} ({''.join(names)} scores) in no "
            f"segment (gap): {shown}"
        )
    for cell, keys in sorted(owners.items()):
        if len(keys) > 1:
            problems.append(
                f"{where}.segments: cell {format_cell(cell)} is in {len(keys)} segments "
                f"(overlap): {', '.join(keys)}"
            )
    return problems


def check_rules(rules: RulesFile) -> list[str]:
    return [p for name, spec in rules.schemes.items() for p in check_scheme(name, spec)]


def build_scheme(
    name: str,
    spec: SchemeSpec,
    thresholds: Mapping[str, tuple[int, ...]] | None = None,
    model: ValueModel | None = None,
) -> GridScheme:
    """The scheme of a checked spec; quantile axes take ``thresholds`` and the P(alive)
    axis takes ``model`` (else the scheme is unranked)."""
    axes = []
    for axis, a in axis_specs(spec):
        window = getattr(a, "window", None)
        if a.quantiles is not None:
            got = (thresholds or {}).get(axis)
            axes.append(Axis(axis, got, tuple(a.quantiles), window, model))
        else:
            axes.append(Axis(axis, _fixed(axis, a.cuts or []), None, window, model))
    names = [a.name for a in axes]
    owners, _ = cell_owners(
        {k: s.cells for k, s in spec.segments.items()}, names, [a.bands for a in axes]
    )
    cell_map = {cell: keys[0] for cell, keys in owners.items()}
    labels = {k: s.label for k, s in spec.segments.items()}
    return GridScheme(name, axes, cell_map, labels, spec.hysteresis, spec.value_figures)


def checked(rules: RulesFile, source: str) -> RulesFile:
    """``rules`` if they make sense, else :class:`RulesError` listing every problem."""
    problems = check_rules(rules)
    if problems:
        raise RulesError(source, problems)
    return rules
