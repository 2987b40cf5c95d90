"""The schemes in force, built from settings (the one place cut points become schemes)."""

from __future__ import annotations

from schemas.money import to_units
from schemas.settings import Settings
from segments.engine import Engine, Policy
from segments.rfm8 import Rfm8
from segments.scheme import Scheme

__all__ = ["build_engine", "build_schemes"]


def build_schemes(settings: Settings) -> list[Scheme]:
    return [
        Rfm8(
            recency_ms=settings.recency,
            frequency_cut=settings.frequency_cut,
            monetary_cut_units=to_units(settings.monetary_cut),
        )
    ]


def build_engine(settings: Settings) -> Engine:
    policy = Policy(
        dedupe_ms=settings.dedupe_retention,
        order_retention_ms=settings.order_retention,
        refund_hold_ms=settings.refund_hold,
    )
    return Engine(build_schemes(settings), policy)
