"""The schemes in force, built from settings (the one place cut points become schemes)."""

from __future__ import annotations

from schemas.money import to_units
from schemas.settings import Settings
from segments.engine import Engine
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
    return Engine(build_schemes(settings))
