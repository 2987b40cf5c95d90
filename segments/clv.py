"""Customer lifetime value and group lifetime, exact to the cent.

The discounted CLV of the customer-management literature this product comes from::

    CLV = m0 − A + Σ_{t=1..n} m_t / (1 + r)^t

* ``m0``  the margin (contribution) of the first purchase, counted undiscounted
  because it happens now;
* ``A``   the acquisition cost, spent now;
* ``m_t`` the margin the customer brings in year ``t`` of a lifetime of ``n`` years;
* ``r``   the yearly discount rate.

Margins, not revenue: a margin is revenue × margin rate (``clv_from_revenue`` does
that multiplication). The group lifetime that supplies ``n`` for a cohort is
``T = 1 / yearly churn rate`` (a cohort losing 20 % a year stays 5 years on average).

Why exact arithmetic: these figures go into snapshots, exports and a README worked
example, and marketing compares them to the cent with spreadsheets. Inputs are
``Decimal`` or ``int`` (floats are refused: ``0.09`` as a float is not 9 %). The sum
is computed in exact rationals (``fractions.Fraction``): ``1/1.09^t`` has no finite
decimal expansion, so any fixed Decimal precision would round *before* the final
step and could, near a half cent, land on the other cent. Exactly one rounding
happens, at the end, to ``quantum`` (default one cent) with ``rounding`` (default
``ROUND_HALF_EVEN``, banker's rounding, the ``decimal`` module's own default).

Pure: no settings, no I/O. The lifetime, discount rate, margin rate and acquisition
cost come from the caller (from settings once wired). Amounts kept as fixed-point
units (``schemas.money``) go in as ``from_units(units)``; a result rounded with
``quantum=Decimal("0.0001")`` goes back with ``to_units``.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from fractions import Fraction

__all__ = [
    "CENT",
    "Amount",
    "clv",
    "clv_exact",
    "clv_from_revenue",
    "clv_level",
    "group_lifetime",
    "round_money",
]

Amount = Decimal | int
"""An exact amount or rate: ``Decimal`` or ``int``, never ``float``."""

CENT = Decimal("0.01")
"""Default quantum of a rounded result."""

_HALF_MODES = (ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_HALF_DOWN)


def _exact(value: Amount, name: str) -> Fraction:
    """``value`` as an exact rational; refuses floats and non-finite decimals."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"{name} must be Decimal or int, not {type(value).__name__}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError(f"{name} must be finite, got {value}")
    return Fraction(value)


def round_money(
    value: Fraction, quantum: Decimal = CENT, rounding: str = ROUND_HALF_EVEN
) -> Decimal:
    """``value`` rounded once to a multiple of ``quantum``, ties broken by ``rounding``.

    Done on the exact rational, so a value that is exactly half a quantum away from two
    neighbours is a true tie (``10.015`` → ``10.02`` half-even) and one that is a hair
    off a tie never becomes one. Only the three half-modes are meaningful for money
    estimates; ``ROUND_HALF_UP`` and ``ROUND_HALF_DOWN`` mean away from / towards zero
    on a tie, as in ``decimal``.
    """
    if rounding not in _HALF_MODES:
        raise ValueError(f"rounding must be one of {_HALF_MODES}, got {rounding!r}")
    q = _exact(quantum, "quantum")
    if q <= 0:
        raise ValueError(f"quantum must be positive, got {quantum}")
    steps = abs(value) / q
    whole = steps.numerator // steps.denominator
    rest = steps - whole
    half = Fraction(1, 2)
    tie_goes_up = rounding == ROUND_HALF_UP or (rounding == ROUND_HALF_EVEN and whole % 2 == 1)
    if rest > half or (rest == half and tie_goes_up):
        whole += 1
    if value < 0:
        whole = -whole
    return (whole * quantum).quantize(quantum)


def _check_rate(discount_rate: Fraction) -> None:
    # (1 + r) must be positive for (1 + r)^t to discount at all; a negative rate above
    # −100 % is odd but well-defined (it inflates later margins), so it is allowed.
    if discount_rate <= -1:
        raise ValueError(f"discount rate must be greater than -1 (−100 %), got {discount_rate}")


def _present_value(
    m0: Fraction, margins: Sequence[Fraction], r: Fraction, cost: Fraction
) -> Fraction:
    """``m0 − cost + Σ_t margins[t-1] / (1 + r)^t`` on exact rationals."""
    _check_rate(r)
    growth = 1 + r
    total = m0 - cost
    factor = Fraction(1)
    for margin in margins:
        factor /= growth  # 1 / (1 + r)^t, exact
        total += margin * factor
    return total


def clv_exact(
    first_margin: Amount,
    yearly_margins: Sequence[Amount],
    *,
    discount_rate: Amount,
    acquisition_cost: Amount,
) -> Fraction:
    """The unrounded CLV ``m0 − A + Σ_t m_t / (1 + r)^t`` as an exact rational.

    ``yearly_margins[t-1]`` is the margin of year ``t``, so the lifetime ``n`` is
    ``len(yearly_margins)`` and years may differ (a customer ramping up). For ranking
    or summing many customers before one final rounding.
    """
    return _present_value(
        _exact(first_margin, "first_margin"),
        [_exact(m, f"yearly_margins[{i}]") for i, m in enumerate(yearly_margins)],
        _exact(discount_rate, "discount_rate"),
        _exact(acquisition_cost, "acquisition_cost"),
    )


def clv(
    first_margin: Amount,
    yearly_margins: Sequence[Amount],
    *,
    discount_rate: Amount,
    acquisition_cost: Amount,
    quantum: Decimal = CENT,
    rounding: str = ROUND_HALF_EVEN,
) -> Decimal:
    """CLV = ``first_margin − acquisition_cost + Σ_t yearly_margins[t-1] / (1 + r)^t``.

    Rounded once, at the end, to ``quantum`` (a cent) with ``rounding`` (half-even).
    The rate is a fraction: 9 % is ``Decimal("0.09")``.
    """
    exact = clv_exact(
        first_margin,
        yearly_margins,
        discount_rate=discount_rate,
        acquisition_cost=acquisition_cost,
    )
    return round_money(exact, quantum, rounding)


def _years(years: int) -> int:
    if isinstance(years, bool) or not isinstance(years, int):
        raise TypeError(f"years must be int, not {type(years).__name__}")
    if years < 0:
        raise ValueError(f"years must be ≥ 0, got {years}")
    return years


def clv_level(
    first_margin: Amount,
    yearly_margin: Amount,
    years: int,
    *,
    discount_rate: Amount,
    acquisition_cost: Amount,
    quantum: Decimal = CENT,
    rounding: str = ROUND_HALF_EVEN,
) -> Decimal:
    """CLV with the same margin every year for ``years`` years (the textbook case).

    The README example: ``clv_level(2000, 500, 5, discount_rate=Decimal("0.09"),
    acquisition_cost=400)`` is ``Decimal("3544.83")``.
    """
    return clv(
        first_margin,
        [yearly_margin] * _years(years),
        discount_rate=discount_rate,
        acquisition_cost=acquisition_cost,
        quantum=quantum,
        rounding=rounding,
    )


def clv_from_revenue(
    first_revenue: Amount,
    yearly_revenue: Amount,
    years: int,
    *,
    margin_rate: Amount,
    discount_rate: Amount,
    acquisition_cost: Amount,
    quantum: Decimal = CENT,
    rounding: str = ROUND_HALF_EVEN,
) -> Decimal:
    """CLV from revenue: every margin is revenue × ``margin_rate``, kept exact.

    The margins are *not* rounded to cents before discounting (that would be a second
    rounding); 8000 first-purchase revenue at a 25 % margin rate is the 2000 margin of
    the README example.
    """
    rate = _exact(margin_rate, "margin_rate")
    yearly = _exact(yearly_revenue, "yearly_revenue") * rate
    exact = _present_value(
        _exact(first_revenue, "first_revenue") * rate,
        [yearly] * _years(years),
        _exact(discount_rate, "discount_rate"),
        _exact(acquisition_cost, "acquisition_cost"),
    )
    return round_money(exact, quantum, rounding)


def group_lifetime(yearly_churn_rate: Amount) -> Fraction:
    """Average lifetime of a cohort in years: ``T = 1 / yearly churn rate``, exact.

    A churn rate of 20 % (``Decimal("0.2")``) gives 5 years; 30 % gives 10/3. The rate
    is the fraction of the group lost per year, so it must lie in (0, 1]: at 0 nobody
    ever leaves and the lifetime is unbounded. Exact because it is a count of years
    that may feed ``clv_level``'s ``years`` (after the caller's own choice of rounding
    down or to nearest, which depends on whether a partial last year counts).
    """
    churn = _exact(yearly_churn_rate, "yearly_churn_rate")
    if not 0 < churn <= 1:
        raise ValueError(f"yearly churn rate must be in (0, 1], got {yearly_churn_rate}")
    return 1 / churn
