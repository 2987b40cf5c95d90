"""BG/NBD: who is still a customer, and how many purchases they will make.

RFM's recency grid calls a customer dormant after a fixed time without a purchase,
the same for a weekly buyer and a twice-a-year one. The BG/NBD model (Fader, Hardie
& Lee 2005, "Counting Your Customers the Easy Way: An Alternative to the Pareto/NBD
Model", Marketing Science 24(2), 275–284) instead reads each customer's own history
against the whole base:

* while alive, a customer buys as a Poisson process with rate λ; λ varies over the
  base as Gamma(shape r, rate α);
* after each purchase the customer drops out for good with probability p; p varies
  over the base as Beta(a, b).

A customer's history is three numbers, all in one time unit (weeks, days, …):

* ``frequency`` x — *repeat* purchases (total purchases − 1);
* ``recency`` t_x — time from the first purchase to the last one (0 when x = 0).
  Not RFM's recency, which is the time *since* the last purchase: that is T − t_x;
* ``age`` T — time from the first purchase to now.

From the fitted (r, α, a, b) follow P(alive | x, t_x, T), the expected purchases
in the next t time units, and a CLV. Parameters scale with the unit: r, a, b are
unit-free, α is in the data's unit (α in days is 7 × α in weeks), so whoever stores
a fit (versioned, like quantile cut points) stores its unit with it.

Everything here is pure numpy/scipy with no I/O. The likelihood is the paper's
closed form (eq. 6, no special functions beyond log-gamma); only the conditional
expectation (eq. 10) needs Gauss's hypergeometric function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import digamma, expit, gammaln, hyp2f1

__all__ = [
    "BgNbdFit",
    "BgNbdParams",
    "clv_units",
    "expected_purchases",
    "expected_purchases_new",
    "fit",
    "log_likelihood",
    "p_alive",
]

_LOG_BOUND = 30.0
"""Log-parameters are searched in [−30, 30]: wide enough for any real base once time
is rescaled (see ``fit``), narrow enough that exp() never overflows mid-search."""

_NEAR_POLE = 1e-6
"""Eq. 10 divides by a − 1 (and, for x = 0, ₂F₁ has a pole at a + b = 1); within this
of either point it is interpolated from both sides."""


@dataclass(frozen=True, slots=True)
class BgNbdParams:
    """Fitted BG/NBD parameters: λ ~ Gamma(r, α), p ~ Beta(a, b); α in the data's unit."""

    r: float
    alpha: float
    a: float
    b: float

    def __post_init__(self) -> None:
        for name in ("r", "alpha", "a", "b"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"BG/NBD parameter {name} must be finite and > 0, got {value}")

    def describe(self) -> dict[str, float]:
        """Plain mapping for a version record or a snapshot (unit kept by the caller)."""
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}


@dataclass(frozen=True, slots=True)
class BgNbdFit:
    """Result of ``fit``: parameters, total log-likelihood and how the search ended."""

    params: BgNbdParams
    log_likelihood: float
    """Σ over customers of the log-likelihood at ``params``, in the data's time unit."""
    n_customers: int
    iterations: int
    converged: bool
    """The optimiser met its tolerance *and* no log-parameter ended on the search bound.

    A bound means the base has no interior maximum (e.g. no sign of dropout: b → ∞):
    the parameters then describe a limit, not an estimate, and a scheduled refit should
    keep the previous version."""


def _history(
    frequency: ArrayLike, recency: ArrayLike, age: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Validated, broadcast float arrays ``x, t_x, T``.

    The checks catch the usual mix-ups: total purchases instead of repeats would still
    pass, but RFM recency (time *since* the last purchase) for t_x usually breaks
    ``x = 0 ⇒ t_x = 0`` or ``t_x ≤ T``.
    """
    x, tx, big_t = np.broadcast_arrays(
        np.asarray(frequency, dtype=np.float64),
        np.asarray(recency, dtype=np.float64),
        np.asarray(age, dtype=np.float64),
    )
    if not (np.isfinite(x).all() and np.isfinite(tx).all() and np.isfinite(big_t).all()):
        raise ValueError("frequency, recency and age must be finite")
    if (x < 0).any() or (x != np.floor(x)).any():
        raise ValueError("frequency (repeat purchases) must be a non-negative integer")
    if (tx < 0).any() or (tx > big_t).any():
        raise ValueError("recency t_x must satisfy 0 ≤ t_x ≤ age T")
    if (tx[x == 0] != 0).any():
        raise ValueError(
            "recency must be 0 where frequency is 0 (t_x is the time of the last repeat "
            "purchase since the first, not the time since the last purchase)"
        )
    return x, tx, big_t


def _log_likelihood_terms(
    r: float,
    alpha: float,
    a: float,
    b: float,
    x: NDArray[np.float64],
    tx: NDArray[np.float64],
    big_t: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """``(A1 + A2, A3, A4, x > 0)`` of eq. 6, so that ll = A1 + A2 + ln(e^A3 + δ e^A4).

    ``A3`` is the branch "still alive at T", ``A4`` "dropped out right after the last
    purchase" (only possible when x > 0).
    """
    repeat = x > 0
    a12 = (
        gammaln(r + x)
        - gammaln(r)
        + r * math.log(alpha)
        + gammaln(a + b)
        + gammaln(b + x)
        - gammaln(b)
        - gammaln(a + b + x)
    )
    a3 = -(r + x) * np.log(alpha + big_t)
    # b + x − 1 with x = 0 would be b − 1 (possibly ≤ 0); that branch is masked anyway
    a4 = math.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + tx)
    return a12, a3, a4, repeat


def _ll(
    r: float,
    alpha: float,
    a: float,
    b: float,
    x: NDArray[np.float64],
    tx: NDArray[np.float64],
    big_t: NDArray[np.float64],
) -> NDArray[np.float64]:
    a12, a3, a4, repeat = _log_likelihood_terms(r, alpha, a, b, x, tx, big_t)
    return a12 + np.where(repeat, np.logaddexp(a3, a4), a3)


def log_likelihood(
    params: BgNbdParams, frequency: ArrayLike, recency: ArrayLike, age: ArrayLike
) -> NDArray[np.float64]:
    """Per-customer log-likelihood of eq. 6 of the paper (its sum is what ``fit`` maximises)."""
    x, tx, big_t = _history(frequency, recency, age)
    return _ll(params.r, params.alpha, params.a, params.b, x, tx, big_t)


def _objective(
    log_params: NDArray[np.float64],
    x: NDArray[np.float64],
    tx: NDArray[np.float64],
    big_t: NDArray[np.float64],
    weights: NDArray[np.float64],
) -> tuple[float, NDArray[np.float64]]:
    """Mean negative log-likelihood and its exact gradient in log-parameters.

    The analytic gradient (digamma for the log-gamma terms, the branch weights
    w3 + w4 = 1 for the log-sum) lets L-BFGS-B stop on a true stationary point instead
    of the noise floor of finite differences.
    """
    r, alpha, a, b = np.exp(log_params)
    a12, a3, a4, repeat = _log_likelihood_terms(r, alpha, a, b, x, tx, big_t)
    mix = np.where(repeat, np.logaddexp(a3, a4), a3)
    ll = a12 + mix
    w4 = np.where(repeat, np.exp(a4 - mix), 0.0)  # posterior weight of "dropped out"
    w3 = 1.0 - w4
    b_x1 = b + np.maximum(x, 1) - 1
    d_r = digamma(r + x) - digamma(r) + math.log(alpha)
    d_r = d_r - w3 * np.log(alpha + big_t) - w4 * np.log(alpha + tx)
    d_alpha = r / alpha - (r + x) * (w3 / (alpha + big_t) + w4 / (alpha + tx))
    d_ab = digamma(a + b) - digamma(a + b + x)
    d_a = d_ab + w4 / a
    d_b = d_ab + digamma(b + x) - digamma(b) - w4 / b_x1
    total = weights.sum()
    grad = np.array(
        [
            r * (weights * d_r).sum(),
            alpha * (weights * d_alpha).sum(),
            a * (weights * d_a).sum(),
            b * (weights * d_b).sum(),
        ]
    )
    return float(-(weights * ll).sum() / total), -grad / total


def fit(
    frequency: ArrayLike,
    recency: ArrayLike,
    age: ArrayLike,
    *,
    initial: BgNbdParams | None = None,
    max_iterations: int = 1000,
) -> BgNbdFit:
    """Maximum-likelihood (r, α, a, b) for a base of customer histories.

    Searched over log-parameters (so positivity is free) with L-BFGS-B and the exact
    gradient. Two things keep it fast and well-conditioned for any base size or time
    unit:

    * identical histories are fitted once with a weight (a base of millions has far
      fewer distinct (x, t_x, T) triples once times are whole days);
    * time is rescaled so the oldest customer's age is 10 (as ``lifetimes`` does):
      α's scale follows the unit, and a start at α = 1 is then never far off. The
      rescaling shifts the log-likelihood by a constant, so the maximiser is the same;
      α is mapped back to the data's unit and the reported log-likelihood is in it.

    ``initial`` (in the data's unit) warm-starts a scheduled refit from the previous
    version; by default the search starts at r = α' = a = b = 1.
    """
    x, tx, big_t = _history(frequency, recency, age)
    x, tx, big_t = x.ravel(), tx.ravel(), big_t.ravel()
    if x.size == 0:
        raise ValueError("cannot fit BG/NBD to no customers")
    oldest = float(big_t.max())
    if oldest <= 0:
        raise ValueError("cannot fit BG/NBD when every customer has age 0")
    if not (x > 0).any():
        # the likelihood then only grows as λ → 0: no maximum, nothing to learn
        raise ValueError("cannot fit BG/NBD without a single repeat purchase")
    scale = 10.0 / oldest
    rows, counts = np.unique(
        np.stack([x, tx * scale, big_t * scale], axis=1), axis=0, return_counts=True
    )
    ux, utx, ut = rows[:, 0], rows[:, 1], rows[:, 2]
    weights = counts.astype(np.float64)
    if initial is None:
        start = np.zeros(4)
    else:
        start = np.log([initial.r, initial.alpha * scale, initial.a, initial.b])
    result = minimize(
        _objective,
        np.clip(start, -_LOG_BOUND, _LOG_BOUND),
        args=(ux, utx, ut, weights),
        jac=True,
        method="L-BFGS-B",
        bounds=[(-_LOG_BOUND, _LOG_BOUND)] * 4,
        options={"maxiter": max_iterations, "ftol": 1e-15, "gtol": 1e-10},
    )
    r, alpha_scaled, a, b = (float(v) for v in np.exp(result.x))
    params = BgNbdParams(r=r, alpha=alpha_scaled / scale, a=a, b=b)
    total = float(_ll(params.r, params.alpha, params.a, params.b, x, tx, big_t).sum())
    return BgNbdFit(
        params=params,
        log_likelihood=total,
        n_customers=int(x.size),
        iterations=int(result.nit),
        converged=bool(result.success) and bool((np.abs(result.x) < _LOG_BOUND - 1e-6).all()),
    )


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
    x, tx, big_t = _history(frequency, recency, age)
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
        direct = hyp2f1(r + x, b + x, c, z) * np.exp((r + x) * log_1mz)
        euler = np.exp((a - 1) * log_1mz) * hyp2f1(a + b - 1 - r, a - 1, c, z)
    return np.where(np.isfinite(direct), direct, euler)


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
    # expectation is smooth in a, so near one it is interpolated linearly between
    # a = pole ± _NEAR_POLE (error O(_NEAR_POLE²) relative).
    for pole in (1.0, 1.0 - b):
        lo_a, hi_a = pole - _NEAR_POLE, pole + _NEAR_POLE
        if abs(a - pole) < _NEAR_POLE and lo_a > 0:
            lo = _expected_regular(r, alpha, lo_a, b, t, x, tx, big_t)
            hi = _expected_regular(r, alpha, hi_a, b, t, x, tx, big_t)
            return lo + (hi - lo) * ((a - lo_a) / (hi_a - lo_a))
    return _expected_regular(r, alpha, a, b, t, x, tx, big_t)


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
    alive_factor = p_alive(BgNbdParams(r, alpha, a, b), x, tx, big_t)
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
    x, tx, big_t = _history(frequency, recency, age)
    horizon = np.asarray(t, dtype=np.float64)
    if not np.isfinite(horizon).all() or (horizon < 0).any():
        raise ValueError("horizon t must be finite and ≥ 0")
    horizon, x, tx, big_t = np.broadcast_arrays(horizon, x, tx, big_t)
    return _expected(params.r, params.alpha, params.a, params.b, horizon, x, tx, big_t)


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
    if periods < 0:
        raise ValueError(f"periods must be ≥ 0, got {periods}")
    if not (math.isfinite(period_length) and period_length > 0):
        raise ValueError(f"period_length must be > 0, got {period_length}")
    if not (math.isfinite(discount_rate) and discount_rate > -1):
        raise ValueError(f"discount_rate must be > -1, got {discount_rate}")
    x, tx, big_t = _history(frequency, recency, age)
    margin = np.asarray(margin_units, dtype=np.float64)
    if not np.isfinite(margin).all():
        raise ValueError("margin_units must be finite")
    shape = np.broadcast_shapes(x.shape, margin.shape)
    if periods == 0:
        return np.zeros(shape, dtype=np.int64)
    ends = period_length * np.arange(periods + 1, dtype=np.float64)
    # horizons along a new trailing axis, histories broadcast in front of it
    cumulative = expected_purchases(params, ends, x[..., None], tx[..., None], big_t[..., None])
    per_period = np.diff(cumulative, axis=-1)
    discount = (1.0 + discount_rate) ** -np.arange(1, periods + 1, dtype=np.float64)
    value = np.broadcast_to(margin, shape) * (per_period @ discount)
    return np.rint(value).astype(np.int64)
