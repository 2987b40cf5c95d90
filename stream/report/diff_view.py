"""What a dry run found, and how it is shown: JSON for machines, text for a terminal. Pure.

:class:`RulesDiff` is ``rfm-stream rules diff`` (the current base under a new rules
file), :class:`NamespaceDiff` is ``rfm-stream diff`` (two namespaces side by side).
Both are built by :mod:`stream.report.dryrun`; nothing here reads Redis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas.money import from_units
from schemas.times import from_ms
from segments.model import CustomerState
from stream.report.movement import Movement, Sample, SchemeMoves

__all__ = ["FmChange", "NamespaceDiff", "RulesDiff", "render_json", "render_text"]


@dataclass(frozen=True, slots=True, order=True)
class FmChange:
    """A customer whose frequency or monetary differ between two namespaces (money in
    units; None: not held there)."""

    customer_id: str
    f: tuple[int | None, int | None]
    m: tuple[int | None, int | None]


@dataclass
class RulesDiff:
    """The current base re-evaluated under ``rules`` at ``as_of_ms``, nothing written."""

    namespace: str
    rules: str
    as_of_ms: int
    movement: Movement
    cut_version: int | None = None
    """The cut-point version the new rules' quantile axes were ranked with (None: none)."""
    unranked: list[str] = field(default_factory=list)
    """Schemes with a quantile axis the namespace has no summary for yet (rank nobody)."""
    recut: list[str] = field(default_factory=list)
    """Schemes whose quantile axes changed, shown under the cut points the workers' next
    refresh computes; until it, they rank with the current version's thresholds."""


@dataclass
class NamespaceDiff:
    """``left`` and ``right`` side by side: segments per customer, and F/M."""

    left: str
    right: str
    movement: Movement
    left_customers: int = 0
    right_customers: int = 0
    fm: Sample = field(default_factory=lambda: Sample(0))
    fm_sample: list[FmChange] = field(default_factory=list)
    """The ``fm`` sample's customers with their figures (the same ids, in order)."""

    @property
    def empty(self) -> bool:
        return self.movement.moved == 0 and self.fm.count == 0

    def compare(self, customer_id: str, a: CustomerState | None, b: CustomerState | None) -> None:
        """One customer as ``left`` holds them (``a``) and as ``right`` does (``b``; None:
        not held there). Keeps the figures of the sampled F/M changes only, so memory
        stays bounded however many differ."""
        self.movement.add(customer_id, a.segments if a else None, b.segments if b else None)
        f = (a.frequency if a else None, b.frequency if b else None)
        m = (a.monetary if a else None, b.monetary if b else None)
        if f[0] == f[1] and m[0] == m[1]:
            return
        self.fm.add(customer_id)
        if customer_id not in self.fm.ids:
            return
        kept = {c.customer_id: c for c in self.fm_sample}
        kept[customer_id] = FmChange(customer_id, f, m)
        self.fm_sample = [kept[c] for c in self.fm.ids]


def _scheme_json(moves: SchemeMoves) -> dict[str, Any]:
    return {
        "moved": moves.moved,
        "before": dict(sorted(moves.before.items())),
        "after": dict(sorted(moves.after.items())),
        "moves": [
            {"from": c.source, "to": c.target, "count": c.count, "sample": list(c.sample)}
            for c in moves.matrix()
        ],
    }


def _money(units: int | None) -> str | None:
    return None if units is None else str(from_units(units))


def render_json(diff: RulesDiff | NamespaceDiff) -> dict[str, Any]:
    """The whole result as JSON-able data (``--json``)."""
    schemes = {name: _scheme_json(m) for name, m in diff.movement.schemes.items()}
    if isinstance(diff, RulesDiff):
        return {
            "kind": "rules_diff",
            "namespace": diff.namespace,
            "rules": diff.rules,
            "as_of": from_ms(diff.as_of_ms).isoformat(timespec="seconds"),
            "cut_version": diff.cut_version,
            "unranked": diff.unranked,
            "recut": diff.recut,
            "customers": diff.movement.customers,
            "schemes": schemes,
        }
    return {
        "kind": "namespace_diff",
        "left": {"namespace": diff.left, "customers": diff.left_customers},
        "right": {"namespace": diff.right, "customers": diff.right_customers},
        "schemes": schemes,
        "fm_differ": {
            "count": diff.fm.count,
            "sample": [
                {
                    "customer_id": c.customer_id,
                    "frequency": list(c.f),
                    "monetary": [_money(c.m[0]), _money(c.m[1])],
                }
                for c in diff.fm_sample
            ],
        },
    }


def _matrix_lines(moves: SchemeMoves) -> list[str]:
    """The from → to table (rows: from, columns: to; only segments that move), then
    each cell's sample."""
    cells = moves.matrix()
    if not cells:
        return ["  nobody moves"]
    rows = sorted({c.source for c in cells})
    cols = sorted({c.target for c in cells})
    count = {(c.source, c.target): c.count for c in cells}
    head = "from \\ to"
    w0 = max(len(head), *(len(r) for r in rows))
    widths = [max(len(c), *(len(f"{count.get((r, c), 0):,}") for r in rows)) for c in cols]
    out = [
        "  "
        + head.ljust(w0)
        + "".join("  " + c.rjust(w) for c, w in zip(cols, widths, strict=True))
    ]
    for r in rows:
        nums = (f"{count[(r, c)]:,}" if (r, c) in count else "." for c in cols)
        out.append(
            "  "
            + r.ljust(w0)
            + "".join("  " + n.rjust(w) for n, w in zip(nums, widths, strict=True))
        )
    for c in cells:
        more = "" if c.count <= len(c.sample) else ", …"
        sample = ", ".join(c.sample)
        out.append(f"  {c.source} → {c.target} ({c.count:,}): {sample}{more}")
    return out


def _sizes_lines(moves: SchemeMoves, left: str, right: str) -> list[str]:
    """Customers per segment on each side, and the difference."""
    segs = sorted(set(moves.before) | set(moves.after))
    w0 = max(len("segment"), *(len(s) for s in segs)) if segs else len("segment")
    wl, wr = max(len(left), 9), max(len(right), 9)
    out = [f"  {'segment'.ljust(w0)}  {left.rjust(wl)}  {right.rjust(wr)}  {'Δ':>9}"]
    for s in segs:
        a, b = moves.before.get(s, 0), moves.after.get(s, 0)
        out.append(f"  {s.ljust(w0)}  {a:>{wl},}  {b:>{wr},}  {b - a:>+9,}")
    return out


def _fm_lines(diff: NamespaceDiff) -> list[str]:
    if diff.fm.count == 0:
        return ["F and M: the same for every customer"]
    out = [f"F or M differ: {diff.fm.count:,} customer(s)"]
    for c in diff.fm_sample:
        m = " → ".join(_money(v) or "-" for v in c.m)
        f = " → ".join("-" if v is None else str(v) for v in c.f)
        out.append(f"  {c.customer_id}: F {f}, M {m}")
    return out


def render_text(diff: RulesDiff | NamespaceDiff) -> str:
    """For a terminal: per scheme the matrix and its samples (and, for two namespaces,
    segment sizes on each side and the F/M differences)."""
    lines: list[str] = []
    if isinstance(diff, RulesDiff):
        at = from_ms(diff.as_of_ms).isoformat(timespec="seconds")
        cut = "" if diff.cut_version is None else f", cut points v{diff.cut_version}"
        lines.append(
            f"{diff.rules} over namespace {diff.namespace!r} as of {at}{cut}: "
            f"{diff.movement.customers:,} customers, nothing written"
        )
        for name in diff.unranked:
            lines.append(f"note: {name} has quantile axes with no summary yet: it ranks nobody")
        for name in diff.recut:
            lines.append(
                f"note: {name}'s quantile axes changed: shown under the cut points the next "
                "refresh computes (until then the workers rank it with the current ones)"
            )
        for name, moves in diff.movement.schemes.items():
            lines.append(f"{name}: {moves.moved:,} would move")
            lines += _sizes_lines(moves, "now", "new rules")
            lines += _matrix_lines(moves)
        return "\n".join(lines)
    lines.append(
        f"{diff.left!r} ({diff.left_customers:,} customers) vs {diff.right!r} "
        f"({diff.right_customers:,} customers)"
    )
    for name, moves in diff.movement.schemes.items():
        lines.append(f"{name}: {moves.moved:,} differ")
        lines += _sizes_lines(moves, diff.left, diff.right)
        lines += _matrix_lines(moves)
    lines += _fm_lines(diff)
    return "\n".join(lines)
