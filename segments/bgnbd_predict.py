"""BG/NBD predictions from fitted parameters: P(alive), expected purchases, CLV.

Split from :mod:`segments.bgnbd` (the model, its likelihood and the fit), which
re-exports everything here. Same conventions: one time unit throughout, histories as
(frequency x, recency t_x, age T).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit, hyp2f1

from segments.bgnbd_model import NEAR_POLE, BgNbdParams, checked_history

__all__ = [
    "clv_units",
    "discounted",
    "discounted_purchases",
    "expected_by_period",
    "expected_purchases",
    "expected_purchases_new",
    "p_alive",
    "p_alive_of_history",
]


def p_alive(
    params: BgNbdParams, frequency: ArrayLike, recency: ArrayLike, age: ArrayLike
) -> NDArray[np.float64]:
    """P(still alive at T | x, t_x, T).

    From Fader, Hardie & Lee's note "Computing P(alive) using the BG/NBD model":

    ``1 / (1 + δ_{x>0} · a/(b + x − 1) · ((α + T)/(α + t_x))^(r + x))``. A customer
    with no repeat purchase is alive with probability 1 (the model lets dropout happen
    only right after a purchase, so one who never came back has had no chance to
    drop out). For fixed x and t_x it falls as T grows, ever faster the more regular
    the customer (larger x), which is what makes it an early warning.
    """
    x, tx, big_t = checked_history(frequency, recency, age)
    return p_alive_of_history(params, x, tx, big_t)


def p_alive_of_history(
    params: BgNbdParams, x: NDArray[np.float64], tx: NDArray[np.float64], big_t: NDArray[np.float64]
) -> NDArray[np.float64]:
    """:func:`p_alive` of float arrays that already satisfy ``checked_history``'s rules
    (made by code that can't break them): without the checks."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_odds_dead = (
        np.log(a)
        - np.log(b + np.maximum(x, 1) - 1)
        + (r + x) * (np.log(alpha + big_t) - np.log(alpha + tx))
    )
    return np.where(x > 0, expit(-log_odds_dead), 1.0)


def _power_hyp2f1(
    r: float,
    alpha: float,
    a: float,
    b: float,
    t: NDArray[np.float64],
    x: NDArray[np.float64],
    big_t: NDArray[np.float64],
) -> NDArray[np.float64]:
    """``((α+T)/(α+T+t))^(r+x) · ₂F₁(r+x, b+x; a+b+x−1; z)`` with ``z = t/(α+T+t)``.

    Not through logarithms: with x = 0 and a + b < 1 the third argument is negative and
    ₂F₁ itself can be negative. Where the direct series overflows (large x, z near 1),
    Euler's transformation ₂F₁(p,q;c;z) = (1−z)^(c−p−q) ₂F₁(c−p,c−q;c;z), with
    1 − z = (α+T)/(α+T+t), folds the power in: the product is then
    ``(1−z)^(a−1) · ₂F₁(a+b−1−r, a−1; a+b+x−1; z)``.
    """
    s = alpha + big_t
    z = t / (s + t)
    log_1mz = np.log(s) - np.log(s + t)
    c = a + b + x - 1
    with np.errstate(over="ignore", invalid="ignore"):
        # scipy ships no types: hyp2f1 is a float64 ufunc
        direct: NDArray[np.float64] = hyp2f1(r + x, b + x, c, z) * np.exp((r + x) * log_1mz)
        bad = ~np.isfinite(direct)
        if bad.any():
            # the series is the cost: the Euler form only where the direct one overflowed
            c, z, log_1mz = (np.broadcast_to(v, direct.shape)[bad] for v in (c, z, log_1mz))
            direct = np.array(direct, dtype=np.float64)  # a 0-d result is read-only
            direct[bad] = np.exp((a - 1) * log_1mz) * hyp2f1(a + b - 1 - r, a - 1, c, z)
    return direct


def _expected(
    r: float,
    alpha: float,
    a: float,
    b: float,
    t: NDArray[np.float64],
    x: NDArray[np.float64],
    tx: NDArray[np.float64],
    big_t: NDArray[np.float64],
) -> NDArray[np.float64]:
    # Eq. 10 has removable 0/0 points at a = 1 (all x) and a + b = 1 (x = 0); the
    # expectation is smooth in a, so near one it is the cubic through a = pole ± NEAR_POLE
    # and pole ± 2·NEAR_POLE. Why not closer points: at a = pole ± h the bracket is a
    # difference of two numbers near 1 divided by h, so each value carries ~1e-16/h of
    # rounding (at h = 1e-6, ~2e-9: expected purchases below zero, and falling as the
    # horizon grows, for tiny horizons). The cubic's own error is O(h⁴) relative.
    for pole in (1.0, 1.0 - b):
        if abs(a - pole) < NEAR_POLE and pole - 2 * NEAR_POLE > 0:
            s = (a - pole) / NEAR_POLE
            got = np.zeros(np.broadcast_shapes(t.shape, x.shape), dtype=np.float64)
            for node in _NODES:
                weight = math.prod((s - m) / (node - m) for m in _NODES if m != node)
                at = pole + node * NEAR_POLE
                got = got + weight * _expected_regular(r, alpha, at, b, t, x, tx, big_t)
            return np.maximum(got, 0.0)
    return np.maximum(_expected_regular(r, alpha, a, b, t, x, tx, big_t), 0.0)


_NODES = (-2.0, -1.0, 1.0, 2.0)
"""Where eq. 10 is evaluated around a removable singularity, in units of NEAR_POLE."""


def _expected_regular(
    r: float,
    alpha: float,
    a: float,
    b: float,
    t: NDArray[np.float64],
    x: NDArray[np.float64],
    tx: NDArray[np.float64],
    big_t: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Eq. 10 as written, away from its removable singularities."""
    bracket = 1.0 - _power_hyp2f1(r, alpha, a, b, t, x, big_t)
    alive_factor = p_alive_of_history(BgNbdParams(r, alpha, a, b), x, tx, big_t)
    return (a + b + x - 1) / (a - 1) * bracket * alive_factor


def expected_purchases(
    params: BgNbdParams,
    t: ArrayLike,
    frequency: ArrayLike,
    recency: ArrayLike,
    age: ArrayLike,
) -> NDArray[np.float64]:
    """E[purchases in (T, T + t] | x, t_x, T], eq. 10 of the paper.

    ``(a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x) ₂F₁(r+x, b+x; a+b+x−1; t/(α+T+t))]
    · P(alive)`` (the paper's denominator is 1/P(alive)). Valid for any a ≠ 1 (for a < 1
    both factors change sign), and for a + b < 1; its removable singularities at a = 1
    and a + b = 1 are bridged (see ``_expected``). ``t`` broadcasts against the
    histories, so one customer over several horizons or many customers over one both work.
    """
    x, tx, big_t = checked_history(frequency, recency, age)
    horizon = np.asarray(t, dtype=np.float64)
    if not np.isfinite(horizon).all() or (horizon < 0).any():
        raise ValueError("horizon t must be finite and ≥ 0")
    shape = np.broadcast_shapes(horizon.shape, x.shape)
    # not broadcast up front: P(alive) is then worked out once per history, not per horizon
    got = _expected(params.r, params.alpha, params.a, params.b, horizon, x, tx, big_t)
    return np.broadcast_to(got, shape).copy() if got.shape != shape else got


def expected_purchases_new(params: BgNbdParams, t: ArrayLike) -> NDArray[np.float64]:
    """E[X(t)] for a customer who has just made a first purchase, eq. 9 of the paper.

    ``(a+b−1)/(a−1) · [1 − (α/(α+t))^r ₂F₁(r, b; a+b−1; t/(α+t))]``: the conditional
    expectation at x = t_x = T = 0. Compared with the base's actual repeat purchases
    over time, it is the model's goodness-of-fit check (the paper's Figure 1).
    """
    horizon = np.asarray(t, dtype=np.float64)
    zero = np.zeros_like(horizon)
    return expected_purchases(params, horizon, zero, zero, zero)


def clv_units(
    params: BgNbdParams,
    frequency: ArrayLike,
    recency: ArrayLike,
    age: ArrayLike,
    margin_units: ArrayLike,
    *,
    periods: int,
    period_length: float,
    discount_rate: float,
) -> NDArray[np.int64]:
    """Predicted CLV of the next ``periods`` periods, in money units of 1/10,000.

    Deliberately simple: period k (length ``period_length`` in the data's unit) brings
    ``E[Y(k·L)] − E[Y((k−1)·L)]`` purchases, each worth the customer's average margin
    ``margin_units`` (no spend model: BG/NBD predicts counts, not amounts), discounted
    as if earned at the period's end: ``Σ_k margin · ΔE_k / (1 + d)^k`` with ``d`` the
    rate per period (yearly periods with 9 % a year: ``period_length=52`` weeks,
    ``discount_rate=0.09``). A model estimate, so it is computed in float and rounded
    once to whole units (half to even); the exact-to-the-cent formula is ``segments.clv``.
    No acquisition cost and no first margin: this is the value still to come.
    """
    margin = np.asarray(margin_units, dtype=np.float64)
    if not np.isfinite(margin).all():
        raise ValueError("margin_units must be finite")
    orders = discounted_purchases(
        params,
        frequency,
        recency,
        age,
        periods=periods,
        period_length=period_length,
        discount_rate=discount_rate,
    )
    return np.rint(margin * orders).astype(np.int64)


def discounted_purchases(
    params: BgNbdParams,
    frequency: ArrayLike,
    recency: ArrayLike,
    age: ArrayLike,
    *,
    periods: int,
    period_length: float,
    discount_rate: float,
) -> NDArray[np.float64]:
    """``Σ_{k=1..periods} ΔE_k / (1 + d)^k``: the purchases expected in each coming period,
    discounted as if made at the period's end (float, unrounded; × a margin per purchase
    it is a CLV's future part)."""
    if periods < 0:
        raise ValueError(f"periods must be ≥ 0, got {periods}")
    if not (math.isfinite(period_length) and period_length > 0):
        raise ValueError(f"period_length must be > 0, got {period_length}")
    if not (math.isfinite(discount_rate) and discount_rate > -1):
        raise ValueError(f"discount_rate must be > -1, got {discount_rate}")
    x, tx, big_t = checked_history(frequency, recency, age)
    if periods == 0:
        return np.zeros(x.shape)
    cumulative = expected_by_period(params, x, tx, big_t, periods, period_length)
    return discounted(cumulative, discount_rate)


def expected_by_period(
    params: BgNbdParams,
    frequency: ArrayLike,
    recency: ArrayLike,
    age: ArrayLike,
    periods: int,
    period_length: float,
) -> NDArray[np.float64]:
    """E[Y(k·L)] for k = 1..``periods``, along a new trailing axis (histories in front):
    the cumulative purchases expected by the end of each coming period. One call serves
    both a customer's expected orders next year (k = 1 with yearly periods) and the
    discounted sum of the CLV (:func:`discounted`): the series is the cost."""
    x, tx, big_t = checked_history(frequency, recency, age)
    ends = period_length * np.arange(1, periods + 1, dtype=np.float64)
    return expected_purchases(params, ends, x[..., None], tx[..., None], big_t[..., None])


def discounted(cumulative: NDArray[np.float64], discount_rate: float) -> NDArray[np.float64]:
    """``Σ_k ΔE_k / (1 + d)^k`` from :func:`expected_by_period`'s cumulative expectations
    (E[Y(0)] = 0)."""
    periods = cumulative.shape[-1]
    discount = (1.0 + discount_rate) ** -np.arange(1, periods + 1, dtype=np.float64)
    return np.diff(cumulative, axis=-1, prepend=0.0) @ discount
