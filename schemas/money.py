"""Exact money: decimals in, fixed-point integers inside.

Amounts are summed as integers of 1/10,000 of the currency unit: every ISO 4217
currency has at most four minor digits, integer sums are exact and vectorise with
numpy (int64 holds ~9.2e14 units), and no float ever touches a customer's total.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = ["MONEY_SCALE", "from_units", "to_units"]

MONEY_SCALE = 10_000
_QUANTUM = Decimal(1) / MONEY_SCALE


def to_units(amount: Decimal) -> int:
    """Fixed-point units of ``amount``; raises ``ValueError`` past 4 decimal places."""
    units = amount * MONEY_SCALE
    if units != units.to_integral_value():
        raise ValueError(f"amount {amount} has more than 4 decimal places")
    return int(units)


def from_units(units: int) -> Decimal:
    """The exact decimal amount of ``units`` (normalised: ``12.5``, not ``12.5000``)."""
    d = (Decimal(units) * _QUANTUM).quantize(_QUANTUM)
    return d.normalize() if d != d.to_integral_value() else d.quantize(Decimal(1))
