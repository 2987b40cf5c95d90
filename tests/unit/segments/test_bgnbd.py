"""BG/NBD: the fit against a reference package on a public dataset, the closed forms
against independent numerical integration, and the alive-probability's shape.
"""

from __future__ import annotations

import csv
import hashlib
import math
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate
from scipy.optimize import approx_fprime
from scipy.special import betaln, gammaln

from segments import bgnbd
from segments.bgnbd import BgNbdParams

CDNOW = Path(__file__).resolve().parents[2] / "data" / "cdnow_customers_summary.csv"
CDNOW_SHA256 = "09d92ca80daaabe8be0f997d4c539f9c9606106baa5b199081fe01cbce5fa9f6"
"""Of the file as shipped in the lifetimes 0.11.3 wheel (see tests/data/README.md)."""

LIFETIMES_VERSION = "0.11.3"
"""``lifetimes`` release whose ``BetaGeoFitter`` produced the reference values below
(run with scipy 1.17.1 and numpy 2.4.6, ``penalizer_coef=0``, default start and tol)."""

LIFETIMES_PARAMS = BgNbdParams(
    r=0.24259292827982148,
    alpha=4.413532265271809,
    a=0.7928859664406578,
    b=2.4257523826257374,
)
"""``BetaGeoFitter().fit(frequency, recency, T).params_`` on the CDNOW summary, exact
floats as printed by lifetimes 0.11.3 (its quickstart rounds them to r 0.243,
alpha 4.414, a 0.793, b 2.426; Fader, Hardie & Lee 2005 report the same, LL −9582.4)."""

LIFETIMES_LOG_LIKELIHOOD = -9582.425560567368
"""Σ log-likelihood at ``LIFETIMES_PARAMS`` in weeks, from lifetimes'
``BetaGeoFitter._negative_log_likelihood`` (mean) × 2,357 customers."""

FIT_RTOL = 1e-3
"""Stated tolerance of the parameter comparison: 0.1 % relative. Both fitters find the
same maximum (we agree to ~5e-7); the slack absorbs lifetimes' Nelder-Mead stopping
rule (tol 1e-7 on the mean log-likelihood), not a different answer."""


def load_cdnow() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with CDNOW.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    x = np.array([float(r["frequency"]) for r in rows])
    tx = np.array([float(r["recency"]) for r in rows])
    big_t = np.array([float(r["T"]) for r in rows])
    return x, tx, big_t


def test_cdnow_fit_matches_lifetimes_beta_geo_fitter() -> None:
    """Our MLE on the CDNOW sample agrees with the ``lifetimes`` package's fitter.

    Dataset: the CDNOW sample of Fader & Hardie (2,357 customers who first bought in
    the first quarter of 1997, 39 weeks of calibration), as shipped by the Python
    package ``lifetimes`` 0.11.3 in ``lifetimes/datasets/cdnow_customers_summary.csv``
    (columns frequency, recency, T in weeks); copied to ``tests/data/``. Reference:
    ``lifetimes.BetaGeoFitter`` 0.11.3 fitted on that file. Tolerance: ``FIT_RTOL``.
    """
    assert hashlib.sha256(CDNOW.read_bytes()).hexdigest() == CDNOW_SHA256
    x, tx, big_t = load_cdnow()
    assert x.size == 2357

    started = time.perf_counter()
    result = bgnbd.fit(x, tx, big_t)
    elapsed = time.perf_counter() - started

    assert result.converged
    assert result.n_customers == 2357
    for name in ("r", "alpha", "a", "b"):
        ours, theirs = getattr(result.params, name), getattr(LIFETIMES_PARAMS, name)
        assert ours == pytest.approx(theirs, rel=FIT_RTOL), name
    # the paper's rounded figures
    assert round(result.params.r, 3) == 0.243
    assert round(result.params.alpha, 3) == 4.414
    assert round(result.params.a, 3) == 0.793
    assert round(result.params.b, 3) == 2.426
    # the same likelihood, and ours is not lower (we stop on the gradient)
    ll_theirs = bgnbd.log_likelihood(LIFETIMES_PARAMS, x, tx, big_t).sum()
    assert ll_theirs == pytest.approx(LIFETIMES_LOG_LIKELIHOOD, abs=1e-6)
    assert result.log_likelihood >= ll_theirs - 1e-6
    assert result.log_likelihood == pytest.approx(-9582.4, abs=0.05)
    assert elapsed < 10.0


def test_fit_does_not_depend_on_the_time_unit_or_the_start() -> None:
    """The same base in days: r, a, b unchanged, α × 7; a warm start lands there too."""
    x, tx, big_t = load_cdnow()
    weeks = bgnbd.fit(x, tx, big_t).params
    days = bgnbd.fit(x, tx * 7, big_t * 7).params
    assert days.r == pytest.approx(weeks.r, rel=1e-5)
    assert days.alpha == pytest.approx(weeks.alpha * 7, rel=1e-5)
    assert days.a == pytest.approx(weeks.a, rel=1e-5)
    assert days.b == pytest.approx(weeks.b, rel=1e-5)
    warm = bgnbd.fit(x, tx, big_t, initial=BgNbdParams(r=1.0, alpha=50.0, a=3.0, b=0.5))
    for name in ("r", "alpha", "a", "b"):
        assert getattr(warm.params, name) == pytest.approx(getattr(weeks, name), rel=1e-5)


def test_fit_recovers_parameters_of_simulated_customers() -> None:
    """Customers drawn from the model itself: the fit finds the generating parameters."""
    rng = np.random.default_rng(20051)
    true = BgNbdParams(r=0.8, alpha=6.0, a=1.5, b=4.0)
    n = 20_000
    lam = rng.gamma(true.r, 1 / true.alpha, n)
    p = rng.beta(true.a, true.b, n)
    big_t = rng.uniform(20, 60, n)
    x = np.zeros(n)
    tx = np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > big_t[i]:
                break
            x[i] += 1
            tx[i] = t
            if rng.random() < p[i]:
                break
    got = bgnbd.fit(x, tx, big_t).params
    assert got.r == pytest.approx(true.r, rel=0.1)
    assert got.alpha == pytest.approx(true.alpha, rel=0.15)
    assert got.a == pytest.approx(true.a, rel=0.25)
    assert got.b == pytest.approx(true.b, rel=0.3)


# (x, t_x, T) -> P(alive), E[purchases in next 39 weeks], from lifetimes 0.11.3's
# conditional_probability_alive / conditional_expected_number_of_purchases_up_to_time
# at LIFETIMES_PARAMS
LIFETIMES_PREDICTIONS = [
    ((0, 0.0, 38.86), 1.0, 0.19478085793947836),
    ((2, 30.43, 38.86), 0.7266091367990596, 1.2259104241744068),
    ((1, 1.71, 38.86), 0.21222738807220765, 0.20325062425618798),
    ((7, 29.43, 35.0), 0.7790050593378186, 4.3693954225628655),
    ((20, 36.0, 37.0), 0.9427773092471199, 13.837043500476378),
    ((5, 10.0, 38.0), 0.02749313607871951, 0.10641749210697593),
]
LIFETIMES_NEW_CUSTOMER = {
    1: 0.0531847368956294,
    10: 0.43176098952266456,
    39: 1.195016228446194,
    78: 1.857971703527763,
}


@pytest.mark.parametrize(("history", "alive", "next39"), LIFETIMES_PREDICTIONS)
def test_predictions_match_lifetimes(
    history: tuple[int, float, float], alive: float, next39: float
) -> None:
    x, tx, big_t = history
    assert bgnbd.p_alive(LIFETIMES_PARAMS, x, tx, big_t) == pytest.approx(alive, rel=1e-9)
    got = bgnbd.expected_purchases(LIFETIMES_PARAMS, 39, x, tx, big_t)
    assert got == pytest.approx(next39, rel=1e-9)


def test_new_customer_expectation_matches_lifetimes() -> None:
    t = np.array(list(LIFETIMES_NEW_CUSTOMER))
    got = bgnbd.expected_purchases_new(LIFETIMES_PARAMS, t)
    np.testing.assert_allclose(got, list(LIFETIMES_NEW_CUSTOMER.values()), rtol=1e-9)


def conditional_expectation_by_quadrature(
    p: BgNbdParams, t: float, x: int, tx: float, big_t: float
) -> float:
    """E[Y(t) | x, t_x, T] from the model's definition, without the hypergeometric
    function: integrate λ ~ Gamma(r, α) out analytically, then p ~ Beta(a, b)
    numerically.

    Given (λ, p), the history's likelihood is (1−p)^x λ^x e^{−λT} (alive at T) plus,
    for x > 0, p (1−p)^(x−1) λ^x e^{−λ t_x} (dropped out after the last purchase);
    an alive customer then buys (1 − e^{−λpt}) / p in expectation over (T, T + t].
    ∫ λ^x e^{−λs} Gamma(λ; r, α) dλ = Γ(r+x)/Γ(r) · α^r / (α+s)^(r+x) =: G(s).
    """
    log_g0 = gammaln(p.r + x) - gammaln(p.r) + p.r * math.log(p.alpha)

    def g(s: float) -> float:
        return math.exp(log_g0 - (p.r + x) * math.log(p.alpha + s))

    def future(q: float) -> float:
        # (1−q)^x / q · [G(T) − G(T + q t)] without Beta's q^(a−1) (1−q)^(b−1), which
        # quad's algebraic weight takes exactly (so a < 1 costs no accuracy)
        if q == 0:
            # limit q → 0 of (1 − ((α+T)/(α+T+qt))^(r+x)) / q
            return g(big_t) * (p.r + x) * t / (p.alpha + big_t)
        ratio = (p.r + x) * (math.log(p.alpha + big_t) - math.log(p.alpha + big_t + q * t))
        return (1 - q) ** x / q * g(big_t) * -math.expm1(ratio)

    numerator = integrate.quad(
        future, 0, 1, weight="alg", wvar=(p.a - 1, p.b - 1), epsabs=0, epsrel=1e-11, limit=200
    )[0] / math.exp(betaln(p.a, p.b))
    dead = 0.0
    if x > 0:
        # ∫ q (1−q)^(x−1) Beta(q; a, b) dq = B(a+1, b+x−1) / B(a, b)
        dead = math.exp(betaln(p.a + 1, p.b + x - 1) - betaln(p.a, p.b)) * g(tx)
    alive = math.exp(betaln(p.a, p.b + x) - betaln(p.a, p.b)) * g(big_t)
    return numerator / (alive + dead)


@pytest.mark.parametrize(
    "params",
    [
        BgNbdParams(r=0.5, alpha=3.0, a=2.5, b=4.0),
        BgNbdParams(r=0.243, alpha=4.41, a=0.79, b=2.43),  # a < 1, like CDNOW
        BgNbdParams(r=1.5, alpha=10.0, a=1.0, b=3.0),  # a = 1: eq. 10's 0/0 point
        BgNbdParams(r=1.0, alpha=1.0, a=0.25, b=0.5),  # a + b < 1: ₂F₁ < 0 for x = 0
        BgNbdParams(r=1.0, alpha=1.0, a=0.25, b=0.75),  # a + b = 1: ₂F₁'s pole for x = 0
        BgNbdParams(r=2.0, alpha=5.0, a=1.0000004, b=1.5),  # just off a = 1
    ],
)
@pytest.mark.parametrize("history", [(0, 0.0, 20.0), (2, 30.0, 38.0), (5, 10.0, 38.0)])
def test_closed_form_expectation_matches_quadrature(
    params: BgNbdParams, history: tuple[int, float, float]
) -> None:
    x, tx, big_t = history
    want = conditional_expectation_by_quadrature(params, 20.0, x, tx, big_t)
    got = bgnbd.expected_purchases(params, 20.0, x, tx, big_t)
    assert got == pytest.approx(want, rel=1e-7)


def test_analytic_gradient_matches_finite_differences() -> None:
    x, tx, big_t = load_cdnow()
    scale = 10 / big_t.max()
    weights = np.ones_like(x)
    for point in ([0.0, 0.0, 0.0, 0.0], [-1.4, 0.5, -0.2, 0.9], [0.3, -1.0, 1.2, -0.5]):
        at = np.array(point)
        _, grad = bgnbd._objective(at, x, tx * scale, big_t * scale, weights)
        numeric = approx_fprime(
            at, lambda v: bgnbd._objective(v, x, tx * scale, big_t * scale, weights)[0], 1e-7
        )
        np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)


positive = st.floats(min_value=0.01, max_value=50, allow_nan=False)
params_st = st.builds(BgNbdParams, r=positive, alpha=positive, a=positive, b=positive)


@given(
    params=params_st,
    x=st.integers(min_value=1, max_value=200),
    tx=st.floats(min_value=0, max_value=500),
    gaps=st.lists(st.floats(min_value=0, max_value=1000), min_size=2, max_size=8),
)
def test_alive_falls_with_time_since_last_purchase(
    params: BgNbdParams, x: int, tx: float, gaps: list[float]
) -> None:
    """Fixed history (x, t_x): the longer since the last purchase, the less alive."""
    big_t = tx + np.sort(np.array(gaps))
    alive = bgnbd.p_alive(params, x, tx, big_t)
    assert ((alive >= 0) & (alive <= 1)).all()
    assert (np.diff(alive) <= 0).all()


@given(
    params=params_st,
    x=st.integers(min_value=1, max_value=200),
    big_t=st.floats(min_value=0, max_value=1000),
    fractions=st.lists(st.floats(min_value=0, max_value=1), min_size=2, max_size=8),
)
def test_alive_rises_with_a_later_last_purchase(
    params: BgNbdParams, x: int, big_t: float, fractions: list[float]
) -> None:
    """Fixed x and age T: the later the last purchase, the more alive."""
    tx = big_t * np.sort(np.array(fractions))
    assert (np.diff(bgnbd.p_alive(params, x, tx, big_t)) >= 0).all()


@given(params=params_st, big_t=st.floats(min_value=0, max_value=1000))
def test_no_repeat_purchase_means_alive(params: BgNbdParams, big_t: float) -> None:
    assert bgnbd.p_alive(params, 0, 0.0, big_t) == 1.0


def test_regular_buyer_who_stops_loses_alive_probability_strictly() -> None:
    """Weekly for 20 weeks, then silence: P(alive) drops strictly week by week, and far
    faster than for a customer with 2 purchases over the same span."""
    weeks_silent = np.arange(0, 13)
    regular = bgnbd.p_alive(LIFETIMES_PARAMS, 20, 20.0, 20.0 + weeks_silent)
    sparse = bgnbd.p_alive(LIFETIMES_PARAMS, 2, 20.0, 20.0 + weeks_silent)
    assert (np.diff(regular) < 0).all()
    assert regular[0] > 0.9
    assert regular[-1] < 0.5 < sparse[-1]


@given(
    params=params_st,
    x=st.integers(min_value=0, max_value=50),
    tx_frac=st.floats(min_value=0, max_value=1),
    big_t=st.floats(min_value=0.1, max_value=200),
    horizons=st.lists(st.floats(min_value=0, max_value=500), min_size=2, max_size=6),
)
def test_expected_purchases_grow_with_the_horizon(
    params: BgNbdParams,
    x: int,
    tx_frac: float,
    big_t: float,
    horizons: list[float],
) -> None:
    tx = big_t * tx_frac if x > 0 else 0.0
    t = np.sort(np.array([0.0, *horizons]))
    got = bgnbd.expected_purchases(params, t, x, tx, big_t)
    assert np.isfinite(got).all()
    assert got[0] == 0
    assert (np.diff(got) >= -1e-9 * np.maximum(1, got[1:])).all()


def test_new_customer_is_conditional_expectation_at_zero_history() -> None:
    t = np.array([1.0, 5.0, 52.0])
    np.testing.assert_allclose(
        bgnbd.expected_purchases_new(LIFETIMES_PARAMS, t),
        bgnbd.expected_purchases(LIFETIMES_PARAMS, t, 0, 0.0, 0.0),
    )


def test_clv_units_is_discounted_expected_purchases_times_margin() -> None:
    """Three yearly periods (52 weeks) at 9 %: per customer,
    margin × Σ_k (E[Y(52k)] − E[Y(52(k−1))]) / 1.09^k, rounded to whole units."""
    x = np.array([0, 2, 7])
    tx = np.array([0.0, 30.43, 29.43])
    big_t = np.array([38.86, 38.86, 35.0])
    margin = np.array([100_000, 200_000, 50_000])  # 10.00, 20.00, 5.00 a purchase
    got = bgnbd.clv_units(
        LIFETIMES_PARAMS, x, tx, big_t, margin, periods=3, period_length=52, discount_rate=0.09
    )
    assert got.dtype == np.int64
    for i in range(3):
        e = [
            float(bgnbd.expected_purchases(LIFETIMES_PARAMS, 52 * k, x[i], tx[i], big_t[i]))
            for k in range(4)
        ]
        want = margin[i] * (
            (e[1] - e[0]) / 1.09 + (e[2] - e[1]) / 1.09**2 + (e[3] - e[2]) / 1.09**3
        )
        assert got[i] == round(want)
    # no discounting: margin × expected purchases over the whole horizon
    flat = bgnbd.clv_units(
        LIFETIMES_PARAMS, 2, 30.43, 38.86, 200_000, periods=3, period_length=52, discount_rate=0
    )
    whole = bgnbd.expected_purchases(LIFETIMES_PARAMS, 156, 2, 30.43, 38.86)
    assert flat == round(200_000 * float(whole))
    nothing = bgnbd.clv_units(
        LIFETIMES_PARAMS, x, tx, big_t, margin, periods=0, period_length=52, discount_rate=0.09
    )
    assert (nothing == 0).all()


@pytest.mark.parametrize(
    ("x", "tx", "big_t", "match"),
    [
        (1, 5.0, 4.0, "t_x ≤ age"),
        (0, 3.0, 10.0, "recency must be 0"),
        (1.5, 3.0, 10.0, "non-negative integer"),
        (-1, 0.0, 10.0, "non-negative integer"),
        (1, -1.0, 10.0, "0 ≤ t_x"),
        (1, float("nan"), 10.0, "finite"),
    ],
)
def test_bad_histories_are_refused(x: float, tx: float, big_t: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        bgnbd.p_alive(LIFETIMES_PARAMS, x, tx, big_t)


def test_bad_parameters_and_empty_fits_are_refused() -> None:
    with pytest.raises(ValueError, match="alpha"):
        BgNbdParams(r=1, alpha=0, a=1, b=1)
    with pytest.raises(ValueError, match="no customers"):
        bgnbd.fit([], [], [])
    with pytest.raises(ValueError, match="age 0"):
        bgnbd.fit([0, 0], [0, 0], [0, 0])
    with pytest.raises(ValueError, match="repeat purchase"):
        # no repeat purchase anywhere: the likelihood grows as λ → 0 without a maximum
        bgnbd.fit([0, 0, 0], [0.0, 0.0, 0.0], [10.0, 20.0, 30.0])
    with pytest.raises(ValueError, match="horizon"):
        bgnbd.expected_purchases(LIFETIMES_PARAMS, -1, 0, 0, 1)
