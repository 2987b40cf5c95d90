"""The segment rules file (TOML): its structure, and loading it with one-line errors.

This module knows the *shape* of a rules file (which keys exist, their types, units);
whether the rules make sense (bands in order, every cell in exactly one segment) is
``segments.check``'s job, so both kinds of problem are reported together by
``rfm-stream rules check`` and the worker refuses to start on either.

A scheme declares some of the axes ``r``, ``f``, ``m`` (recency, frequency, monetary)
and ``a``, ``t``, ``c``, ``g``, ``p`` (average order value, tenure, cadence, growth,
P(alive); see ``segments.axes``). Each axis is split into bands by **fixed** cut points (durations,
counts, amounts, percentages) or by **quantiles** of the current customer population;
a band's score runs from 1 (oldest / fewest / least) to the number of bands. Segments
are named groups of cells, a cell being one score per declared axis, written as a
pattern in r, f, m, a, t, c, g, p order: ``"5[45]*"`` = R 5, F 4 or 5, any M.

The rules in force may come from several files at once: ``RFM_RULES`` / ``--rules`` is a
comma-separated list of paths and shipped names (``rfm,management,./mine.toml``), their
schemes taken together in that order. A scheme name defined in two of them is an error
naming both files, never a silent override: which definition wins would otherwise
depend on the order of a list someone edits months later.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from schemas.errors import RfmStreamError
from schemas.settings import Duration

__all__ = [
    "DEFAULT_RULES",
    "MANAGEMENT_RULES",
    "SHIPPED",
    "AnyAxis",
    "AxisSpec",
    "MonetaryAxis",
    "RecencyAxis",
    "RulesError",
    "RulesFile",
    "SchemeSpec",
    "SegmentSpec",
    "default_rules_path",
    "load_rules",
    "parse_rules",
    "rules_sources",
    "shipped_paths",
]

DEFAULT_RULES = "default_rules.toml"
"""The shipped RFM rules (rfm8, rfm27, rfm125, pyramid), packaged next to this module."""
MANAGEMENT_RULES = "management_rules.toml"
"""The shipped customer-management rules (churn_warning, alive, lifecycle, loyalty,
value_matrix, purchase_pattern)."""
SHIPPED: dict[str, tuple[str, ...]] = {
    "default": (DEFAULT_RULES,),
    "rfm": (DEFAULT_RULES,),
    "management": (MANAGEMENT_RULES,),
    "all": (DEFAULT_RULES, MANAGEMENT_RULES),
}
"""Names ``RFM_RULES`` may give instead of a path, and the shipped files each stands for.
``default`` (also what an unset ``RFM_RULES`` means) is the four RFM schemes (``rfm``);
``all`` adds the management schemes. Not every shipped scheme by default: with all of
them the engine runs at 0.1-0.4x the RFM schemes' throughput and a customer costs ~433 B
of Redis at 1M (BENCHMARKS.md "Engine cost per scheme set", "Redis memory per
customer"), against issue #20's 0.7x and the 400 B budget."""

Key = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
Quantile = Annotated[float, Field(gt=0, lt=1)]


class RulesError(RfmStreamError):
    """A rules file is unreadable or wrong; ``problems`` has one line per problem."""

    def __init__(self, source: str, problems: list[str], partial: RulesFile | None = None) -> None:
        self.source = source
        self.problems = problems
        self.partial = partial
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"bad rules file {source}: {problems[0]}{more}")


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RecencyAxis(_Spec):
    """R: elapsed time since the last purchase. Cuts are durations, ascending."""

    cuts: list[Duration] | None = Field(None, description="Band edges, e.g. ['30d', '90d'].")
    quantiles: list[Quantile] | None = Field(None, description="Or population quantiles.")


class AxisSpec(_Spec):
    """F: number of orders that still hold money (lifetime or within ``window``)."""

    cuts: list[Annotated[int, Field(ge=1)]] | None = None
    quantiles: list[Quantile] | None = None
    window: Duration | None = Field(None, description="Count only orders this recent.")


class MonetaryAxis(_Spec):
    """M: net spend (purchases minus refunds), exact decimal amounts."""

    cuts: list[Annotated[Decimal, Field(gt=0)]] | None = None
    quantiles: list[Quantile] | None = None
    window: Duration | None = Field(None, description="Sum only purchases this recent.")


class AverageAxis(_Spec):
    """A: average order value (net spend / orders), exact decimal amounts."""

    cuts: list[Annotated[Decimal, Field(gt=0)]] | None = None
    quantiles: list[Quantile] | None = None


class TenureAxis(_Spec):
    """T: tenure, the span from the first to the last purchase. Durations, ascending."""

    cuts: list[Duration] | None = None
    quantiles: list[Quantile] | None = None


class CadenceAxis(_Spec):
    """C: time since the last purchase as a percentage of the customer's own mean
    interval between orders (150 = half as long again as usual); fixed cuts only."""

    cuts: list[Annotated[int, Field(ge=1)]] | None = None
    quantiles: None = Field(None, description="Not supported: a cadence is per customer.")


class AliveAxis(_Spec):
    """P: probability the customer is still active, per mille (1000 = certainly), from
    the base's BG/NBD model, refitted with the cut points; fixed cuts in 1..999 only."""

    cuts: list[Annotated[int, Field(ge=1, le=999)]] | None = None
    quantiles: None = Field(None, description="Not supported: P(alive) is a probability.")


class GrowthAxis(_Spec):
    """G: net spend in the last ``window`` as a percentage of the window before it."""

    window: Duration
    cuts: list[Annotated[int, Field(ge=0)]] | None = None
    quantiles: None = Field(None, description="Not supported.")


AnyAxis = (
    RecencyAxis
    | AxisSpec
    | MonetaryAxis
    | AverageAxis
    | TenureAxis
    | CadenceAxis
    | GrowthAxis
    | AliveAxis
)


class Axes(_Spec):
    r: RecencyAxis | None = None
    f: AxisSpec | None = None
    m: MonetaryAxis | None = None
    a: AverageAxis | None = None
    t: TenureAxis | None = None
    c: CadenceAxis | None = None
    g: GrowthAxis | None = None
    p: AliveAxis | None = None


class SegmentSpec(_Spec):
    label: Annotated[str, Field(min_length=1)] = Field(description="Display label.")
    cells: list[str] = Field(min_length=1, description="Cell patterns, in r, f, m order.")
    description: str = ""
    lapsed: StrictBool = Field(
        False,
        description="Customers here have lapsed (e.g. dormant, churning): win-back counts "
        "who enters it and who comes back. Classifies nobody: not part of the rules version.",
    )


class SchemeSpec(_Spec):
    title: str = ""
    description: str = ""
    axes: Axes
    segments: dict[Key, SegmentSpec] = Field(min_length=1)
    hysteresis: float = Field(
        0.0,
        ge=0,
        lt=0.5,
        description="Anti-flapping margin on every axis but R: to leave a band, a value "
        "must pass its cut point by this fraction (0.05 = 5 %).",
    )
    value_figures: bool = Field(
        False,
        description="Its transitions carry the customer's value figures (P(alive), "
        "expected orders, CLV) in the snapshot, for ranking win-back targets.",
    )


class RulesFile(_Spec):
    schemes: dict[Key, SchemeSpec] = Field(min_length=1)


def default_rules_path() -> Path:
    """The shipped RFM rules file, the one to copy and change."""
    return _packaged(DEFAULT_RULES)


def _packaged(file: str) -> Path:
    return Path(str(resources.files("schemas").joinpath(file)))


def shipped_paths(name: str) -> list[Path]:
    """The packaged files a shipped name (a key of :data:`SHIPPED`) stands for."""
    return [_packaged(f) for f in SHIPPED[name]]


def rules_sources(value: str | Path | None) -> list[Path]:
    """The files a ``RFM_RULES`` value names, in order: a comma-separated list of paths
    and shipped names (a name counts as a path where such a file exists); unset or
    empty: ``default``. A path that exists as given is one file, commas and all."""
    if value is None or not str(value).strip():
        return shipped_paths("default")
    text = str(value)
    if Path(text).exists():
        return [Path(text)]
    out: list[Path] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            raise RulesError(text, ["empty entry in the list of rules files"])
        out += shipped_paths(part) if part in SHIPPED and not Path(part).exists() else [Path(part)]
    return out


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _problems(exc: ValidationError, prefix: tuple[int | str, ...]) -> list[str]:
    out = []
    for err in exc.errors(include_url=False):
        where = _where(prefix + tuple(err["loc"]))
        if err["type"] == "extra_forbidden":
            out.append(f"{where}: unknown key")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            out.append(f"{where}: {msg} (got {err.get('input')!r})")
    return out


def parse_rules(doc: dict[str, Any], source: str) -> RulesFile:
    """Validate the shape of a parsed TOML document; every problem named by its path.

    Schemes are validated one by one, so one malformed scheme doesn't hide the others'
    problems: the :class:`RulesError` carries the schemes that did parse (``partial``)
    for the sense checks.
    """
    schemes = doc.get("schemes") if isinstance(doc, dict) else None
    if not isinstance(schemes, dict) or not schemes:
        try:
            return RulesFile.model_validate(doc)
        except ValidationError as exc:
            raise RulesError(source, _problems(exc, ())) from None
    problems = [f"{k}: unknown key" for k in doc if k != "schemes"]
    good: dict[str, SchemeSpec] = {}
    for name, raw in schemes.items():
        try:
            good[name] = RulesFile.model_validate({"schemes": {name: raw}}).schemes[name]
        except ValidationError as exc:
            problems += _problems(exc, ())
    if problems:
        raise RulesError(source, problems, RulesFile(schemes=good) if good else None)
    return RulesFile(schemes=good)


def _load_file(p: Path) -> RulesFile:
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(str(p), [f"cannot read it: {exc.strerror or exc}"]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RulesError(str(p), [f"not valid TOML: {exc}"]) from None
    return parse_rules(doc, str(p))


def load_rules(path: str | Path | None) -> RulesFile:
    """Read and shape-check the rules files ``path`` names (:func:`rules_sources`: unset
    is ``default``, the RFM schemes) and take their schemes together, in file order.

    Every file's problems are reported, each line prefixed with its file when there are
    several; a scheme name in two files is a problem naming both. The
    :class:`RulesError` carries the schemes that did parse (``partial``).
    """
    # a file named twice (``default,rfm``) is read once: the same definitions, no clash
    first: dict[Path, Path] = {}
    for p in rules_sources(path):
        first.setdefault(p.resolve(), p)
    files = list(first.values())
    if len(files) == 1:
        return _load_file(files[0])
    problems: list[str] = []
    good: dict[str, SchemeSpec] = {}
    origin: dict[str, Path] = {}
    for p in files:
        try:
            part = _load_file(p)
        except RulesError as exc:
            problems += [f"{p}: {line}" for line in exc.problems]
            if exc.partial is None:
                continue
            part = exc.partial
        for name, spec in part.schemes.items():
            if name in origin:
                problems.append(f"scheme {name!r} is defined in both {origin[name]} and {p}")
                continue
            origin[name] = p
            good[name] = spec
    source = str(path) if path else "default"  # what the user wrote
    if problems:
        raise RulesError(source, problems, RulesFile(schemes=good) if good else None)
    return RulesFile(schemes=good)
