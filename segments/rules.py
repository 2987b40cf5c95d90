"""The schemes in force: the rules file, checked, plus the settings' rfm8 overrides.

The one place cut points become schemes. Quantile axes take the thresholds of the
current cut-point version (``segments.cut_points``), the P(alive) axis its model of the
base (``segments.value``); until the first version exists they rank nobody.
"""

from __future__ import annotations

from collections.abc import Mapping

from schemas.errors import SettingsError
from schemas.money import to_units
from schemas.rules import RulesFile, load_rules
from schemas.settings import Settings
from segments.check import build_scheme, checked
from segments.clv import group_lifetime
from segments.cut_points import CutPoints
from segments.engine import Engine, Policy
from segments.grid import GridScheme
from segments.value import ValueModel, ValuePolicy

__all__ = [
    "Thresholds",
    "build_engine",
    "build_schemes",
    "load_checked_rules",
    "policy_of",
    "value_policy_of",
]

Thresholds = Mapping[str, Mapping[str, tuple[int, ...]]]
"""scheme -> axis -> thresholds, for quantile axes (from a cut-point version)."""


def _overridden(rules: RulesFile, settings: Settings) -> RulesFile:
    """Apply ``RFM_RECENCY`` / ``RFM_FREQUENCY_CUT`` / ``RFM_MONETARY_CUT`` to rfm8."""
    given = {
        "r": settings.recency,
        "f": settings.frequency_cut,
        "m": settings.monetary_cut,
    }
    given = {k: v for k, v in given.items() if v is not None}
    if not given:
        return rules
    spec = rules.schemes.get("rfm8")
    env = {"r": "RFM_RECENCY", "f": "RFM_FREQUENCY_CUT", "m": "RFM_MONETARY_CUT"}
    for axis in given:
        a = getattr(spec.axes, axis) if spec else None
        if a is None or a.cuts is None or len(a.cuts) != 1:
            raise SettingsError(
                f"bad setting {env[axis]}: it overrides the rfm8 scheme's single fixed "
                f"{axis} cut, and the rules file has none"
            )
    assert spec is not None
    axes = spec.axes.model_copy(
        update={k: getattr(spec.axes, k).model_copy(update={"cuts": [v]}) for k, v in given.items()}
    )
    schemes = dict(rules.schemes)
    schemes["rfm8"] = spec.model_copy(update={"axes": axes})
    return RulesFile(schemes=schemes)


def load_checked_rules(settings: Settings) -> RulesFile:
    """The rules in force, or ``RulesError`` naming every problem (the worker won't start)."""
    rules = load_rules(settings.rules)
    return checked(_overridden(rules, settings), settings.rules or "(shipped default rules)")


def build_schemes(
    settings: Settings,
    rules: RulesFile | None = None,
    thresholds: Thresholds | None = None,
    model: ValueModel | None = None,
) -> list[GridScheme]:
    rules = rules or load_checked_rules(settings)
    return [
        build_scheme(name, spec, (thresholds or {}).get(name), model)
        for name, spec in rules.schemes.items()
    ]


def policy_of(settings: Settings) -> Policy:
    return Policy(
        dedupe_ms=settings.dedupe_retention,
        order_retention_ms=settings.order_retention,
        refund_hold_ms=settings.refund_hold,
        history=settings.history_size,
    )


def value_policy_of(settings: Settings) -> ValuePolicy:
    """The CLV inputs: lifetime (years, or the group lifetime 1 / churn), discount and
    margin rates, acquisition cost."""
    years = settings.clv_years
    if years is None:
        churn = settings.clv_yearly_churn
        years = int(group_lifetime(churn)) if churn is not None else 5
    return ValuePolicy(
        margin_rate=settings.clv_margin_rate,
        years=years,
        discount_rate=settings.clv_discount_rate,
        acquisition_cost_units=to_units(settings.clv_acquisition_cost),
    )


def build_engine(
    settings: Settings, rules: RulesFile | None = None, cuts: CutPoints | None = None
) -> Engine:
    """The engine for ``rules`` (default: the settings' rules file) at cut points ``cuts``."""
    schemes = build_schemes(
        settings, rules, cuts.thresholds if cuts else None, cuts.model if cuts else None
    )
    engine = Engine(schemes, policy_of(settings))
    engine.cut_version = cuts.version if cuts else None
    engine.summary_since = cuts.since_for(engine.rules_version) if cuts else None
    engine.model = cuts.model if cuts else None
    return engine
