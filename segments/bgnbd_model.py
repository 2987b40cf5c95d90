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
from scipy.special import digamma, gammaln

__all__ = ["NEAR_POLE", "BgNbdFit", "BgNbdParams", "checked_history", "fit", "log_likelihood"]

_LOG_BOUND = 30.0
"""Log-parameters are searched in [−30, 30]: wide enough for any real base once time
is rescaled (see ``fit``), narrow enough that exp() never overflows mid-search."""

_LIMIT_LOG = 12.0
"""A log-parameter beyond ±12 (a parameter over ~160,000 or under ~6e-6, time rescaled)
is not an estimate but a limit the likelihood was still climbing toward (no dropout
seen: a, b → ∞; pure Poisson: r, α → ∞ together). L-BFGS-B may report success there
before reaching the search bound: its steps get flat (scipy 1.17 stops near 17)."""

NEAR_POLE = 3e-4
"""Eq. 10 divides by a − 1 (and, for x = 0, ₂F₁ has a pole at a + b = 1); within this
of either point it is interpolated from both sides (``bgnbd_predict._expected``)."""


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
    """The optimiser met its tolerance *and* no log-parameter ran off (``_LIMIT_LOG``).

    Running off means the base has no interior maximum (e.g. no sign of dropout: b → ∞):
    the parameters then describe a limit, not an estimate, and a scheduled refit should
    keep the previous version."""


def checked_history(
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
    x, tx, big_t = checked_history(frequency, recency, age)
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
    x, tx, big_t = checked_history(frequency, recency, age)
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
    # imported here: scipy.optimize takes a quarter of a second to import, and only a fit
    # needs it (every backfill process and worker imports this module)
    from scipy.optimize import minimize

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
        converged=bool(result.success) and bool((np.abs(result.x) < _LIMIT_LOG).all()),
    )
