"""CLV and group lifetime reproduce hand-computed values exactly, to the cent.

Every expected value is worked out by hand in the test itself, as literal arithmetic
(discount factors written out, each term divided out to more digits than a cent
needs, summed, rounded), never by calling the code under test. Where the rational
value has no finite decimal expansion the hand figures are shown to 6+ decimals,
which pins the cent because none of them is within 10^-6 of a half cent.
"""

from __future__ import annotations

from decimal import ROUND_HALF_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segments.clv import (
    clv,
    clv_exact,
    clv_from_revenue,
    clv_level,
    group_lifetime,
    round_money,
)

D = Decimal


def test_readme_example() -> None:
    """n = 5 years, acquisition cost 400, first-purchase margin 2000, 500 a year, r = 9 %.

    (1.09)^t for t = 1..5:  1.09, 1.1881, 1.295029, 1.41158161, 1.5386239549
    500 / 1.09           = 458.715596…
    500 / 1.1881         = 420.839996…
    500 / 1.295029       = 386.091740…
    500 / 1.41158161     = 354.212605…
    500 / 1.5386239549   = 324.965693…
    Σ                    = 1944.825631…  (= 500 × 3.8896513, the 5-year annuity factor at 9 %)
    CLV = 2000 − 400 + 1944.825632… = 3544.825631… → 3544.83
    """
    hand_terms = [
        Fraction(500) / Fraction("1.09"),
        Fraction(500) / Fraction("1.1881"),
        Fraction(500) / Fraction("1.295029"),
        Fraction(500) / Fraction("1.41158161"),
        Fraction(500) / Fraction("1.5386239549"),
    ]
    hand_exact = 2000 - 400 + sum(hand_terms)
    assert abs(hand_exact - Fraction("3544.825631")) < Fraction(1, 10**6)

    got = clv_level(2000, 500, 5, discount_rate=D("0.09"), acquisition_cost=400)
    assert got == D("3544.83")
    assert str(got) == "3544.83"
    assert clv(2000, [500] * 5, discount_rate=D("0.09"), acquisition_cost=400) == D("3544.83")
    assert (
        clv_exact(2000, [D(500)] * 5, discount_rate=D("0.09"), acquisition_cost=D(400))
        == hand_exact
    )


def test_readme_example_from_revenue() -> None:
    """The same customer as revenue at a 25 % margin rate.

    first purchase: revenue 8000 × 0.25 = margin 2000;  yearly: 2000 × 0.25 = 500
    → the README example, 3544.83.
    """
    got = clv_from_revenue(
        8000,
        2000,
        5,
        margin_rate=D("0.25"),
        discount_rate=D("0.09"),
        acquisition_cost=400,
    )
    assert got == D("3544.83")


def test_varying_margins() -> None:
    """A customer ramping up: margins 300, 400, 500 in years 1-3, r = 10 %,
    first-purchase margin 150, acquisition cost 200.

    300 / 1.1   = 272.727272…
    400 / 1.21  = 330.578512…
    500 / 1.331 = 375.657400…
    Σ           = 978.963185…
    CLV = 150 − 200 + 978.963185… = 928.963185… → 928.96
    """
    got = clv(150, [300, 400, 500], discount_rate=D("0.10"), acquisition_cost=200)
    assert got == D("928.96")


def test_terminating_rate_is_exact_without_rounding() -> None:
    """r = 25 %: 1/1.25 = 0.8, 1/1.5625 = 0.64, 1/1.953125 = 0.512 — every term is a
    finite decimal, so the result is exact before rounding.

    1000 × 0.8 + 1000 × 0.64 + 1000 × 0.512 = 800 + 640 + 512 = 1952
    CLV = 120.50 − 99.99 + 1952 = 1972.51
    """
    exact = clv_exact(D("120.50"), [1000] * 3, discount_rate=D("0.25"), acquisition_cost=D("99.99"))
    assert exact == Fraction("1972.51")
    assert clv_level(
        D("120.50"), 1000, 3, discount_rate=D("0.25"), acquisition_cost=D("99.99")
    ) == (D("1972.51"))


def test_zero_rate_is_plain_sum_and_zero_years_is_first_margin_minus_cost() -> None:
    """r = 0: 100 − 50 + 250 + 250 + 250 = 800.00;  n = 0: 2000 − 400 = 1600.00."""
    assert clv(100, [250, 250, 250], discount_rate=0, acquisition_cost=50) == D("800.00")
    assert clv_level(2000, 500, 0, discount_rate=D("0.09"), acquisition_cost=400) == D("1600.00")


def test_loss_making_customer_is_negative() -> None:
    """Acquisition cost above everything the customer brings.

    100 / 1.05 = 95.238095…;  100 / 1.1025 = 90.702947…;  Σ = 185.941043…
    CLV = 50 − 400 + 185.941043… = −164.058956… → −164.06
    """
    assert clv_level(50, 100, 2, discount_rate=D("0.05"), acquisition_cost=400) == D("-164.06")


def test_half_cent_ties_round_half_even_by_default() -> None:
    """r = 100 % halves year 1, so a margin of 0.03 is worth exactly 0.015 today.

    10 + 0.03 / 2 = 10.015 → 10.02 (1001.5 cents: the even neighbour is 1002)
    10 + 0.05 / 2 = 10.025 → 10.02 (1002.5 cents: the even neighbour is 1002)
    half-up takes 10.025 away from zero, to 10.03; half-down towards zero, to 10.02.
    −10 − 0.05 / 2 = −10.025 → −10.02 (half-even), −10.03 (half-up: away from zero)
    """
    assert clv(10, [D("0.03")], discount_rate=1, acquisition_cost=0) == D("10.02")
    assert clv(10, [D("0.05")], discount_rate=1, acquisition_cost=0) == D("10.02")
    half_up = clv(10, [D("0.05")], discount_rate=1, acquisition_cost=0, rounding=ROUND_HALF_UP)
    assert half_up == D("10.03")
    half_down = clv(10, [D("0.05")], discount_rate=1, acquisition_cost=0, rounding=ROUND_HALF_DOWN)
    assert half_down == D("10.02")
    assert clv(-10, [D("-0.05")], discount_rate=1, acquisition_cost=0) == D("-10.02")
    negative_up = clv(
        -10, [D("-0.05")], discount_rate=1, acquisition_cost=0, rounding=ROUND_HALF_UP
    )
    assert negative_up == D("-10.03")


def test_one_rounding_only() -> None:
    """Rounding each discounted term to the cent first would give another answer.

    r = 100 %, three years of 0.01: 0.005 + 0.0025 + 0.00125 = 0.00875 → 0.01,
    whereas per-term cents (half-even) would be 0.00 + 0.00 + 0.00 = 0.00.
    """
    assert clv(0, [D("0.01")] * 3, discount_rate=1, acquisition_cost=0) == D("0.01")


def test_other_quantum() -> None:
    """Whole currency units: 3544.825631… → 3545 (and to 4 places: 3544.8256)."""
    args = {"discount_rate": D("0.09"), "acquisition_cost": 400}
    assert clv_level(2000, 500, 5, quantum=D(1), **args) == D(3545)
    assert clv_level(2000, 500, 5, quantum=D("0.0001"), **args) == D("3544.8256")


@pytest.mark.parametrize(
    ("churn", "years"),
    [
        (D("0.2"), Fraction(5)),  # 1 / 0.2 = 5
        (D("0.25"), Fraction(4)),  # 1 / 0.25 = 4
        (D("0.3"), Fraction(10, 3)),  # 1 / 0.3 = 10/3 = 3.33… years
        (D("0.08"), Fraction(25, 2)),  # 1 / 0.08 = 12.5
        (1, Fraction(1)),  # everyone leaves within the year
    ],
)
def test_group_lifetime(churn: Decimal | int, years: Fraction) -> None:
    assert group_lifetime(churn) == years


def test_group_lifetime_feeds_the_readme_example() -> None:
    """A cohort losing 20 % a year lives 1 / 0.2 = 5 years: the README's n."""
    n = group_lifetime(D("0.2"))
    assert n.denominator == 1
    got = clv_level(2000, 500, int(n), discount_rate=D("0.09"), acquisition_cost=400)
    assert got == D("3544.83")


@pytest.mark.parametrize("churn", [0, D("-0.1"), D("1.5"), D("NaN")])
def test_group_lifetime_rejects_rates_outside_0_1(churn: Decimal | int) -> None:
    with pytest.raises(ValueError, match="churn"):
        group_lifetime(churn)


def test_floats_are_refused() -> None:
    # floats where the types say Decimal: the caller's bug under test, typed Any on purpose
    rate: Any = 0.09
    margin: Any = 500.0
    churn: Any = 0.2
    with pytest.raises(TypeError, match="discount_rate"):
        clv(2000, [500], discount_rate=rate, acquisition_cost=400)
    with pytest.raises(TypeError, match="yearly_margins"):
        clv(2000, [margin], discount_rate=D("0.09"), acquisition_cost=400)
    with pytest.raises(TypeError, match="yearly_churn_rate"):
        group_lifetime(churn)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="discount rate"):
        clv(0, [1], discount_rate=-1, acquisition_cost=0)
    with pytest.raises(ValueError, match="years"):
        clv_level(0, 1, -1, discount_rate=0, acquisition_cost=0)
    with pytest.raises(ValueError, match="rounding"):
        clv(0, [1], discount_rate=0, acquisition_cost=0, rounding="ROUND_FLOOR")
    with pytest.raises(ValueError, match="quantum"):
        clv(0, [1], discount_rate=0, acquisition_cost=0, quantum=D(0))


cents = st.decimals(min_value=-(10**6), max_value=10**6, places=2, allow_nan=False)
rates = st.decimals(min_value=0, max_value=1, places=4, allow_nan=False)


@given(m0=cents, margins=st.lists(cents, max_size=10), r=rates, cost=cents)
def test_rounded_is_within_half_a_cent_of_exact(
    m0: Decimal, margins: list[Decimal], r: Decimal, cost: Decimal
) -> None:
    exact = clv_exact(m0, margins, discount_rate=r, acquisition_cost=cost)
    got = clv(m0, margins, discount_rate=r, acquisition_cost=cost)
    assert got == got.quantize(D("0.01"))
    assert abs(Fraction(got) - exact) <= Fraction(1, 200)


@given(value=st.decimals(min_value=-(10**6), max_value=10**6, places=4, allow_nan=False))
def test_round_money_agrees_with_decimal_quantize(value: Decimal) -> None:
    """On values with a finite decimal form, our rounding is ``Decimal.quantize``'s."""
    for mode in (ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_HALF_DOWN):
        assert round_money(Fraction(value), D("0.01"), mode) == value.quantize(D("0.01"), mode)
