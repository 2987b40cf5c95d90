"""What a customer is worth and whether they are still one: the live value figures.

A BG/NBD model (``segments.bgnbd``) is fitted on a sample of the customer base and kept
as part of the namespace's cut-point version (``segments.cut_points.CutPoints``), so it
is refitted on the same schedule as the quantile cut points, every transition says
which version it was computed with, and a refit re-evaluates the customers of the
schemes that read it (``cause=recalibration``), exactly like moved quantiles.

From a fit and one customer's history (orders still holding money, first and last
purchase) follow:

* **P(alive)**, the probability the customer is still active. As the ``p`` axis of a
  grid it is held in per mille (``floor(1000 · P)``), and because for a fixed history
  it only falls with time, the instant it drops below a cut has a closed form: the
  churn early warning is scheduled, not scanned for (``alive_due``).
* **expected orders** in the next year;
* **CLV** by the customer-management formula ``m0 − A + Σ_{t=1..n} m_t / (1 + r)^t``
  (``segments.clv``), where for a live customer m0 is the margin realised so far, A the
  acquisition cost, and m_t the margin the model expects in year t: margin rate ×
  average order value × expected orders in year t. ``n``, ``r``, the margin rate and
  ``A`` come from settings (``ValuePolicy``).

Time is in days inside the model (α is stored with its unit). Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

import numpy as np

from schemas.money import MONEY_SCALE
from schemas.times import DAY_MS
from segments import bgnbd
from segments.bgnbd import BgNbdParams
from segments.clv import CENT
from segments.model import NEVER, Columns, CustomerState

__all__ = [
    "MIN_REPEAT_BUYERS",
    "ValueModel",
    "ValuePolicy",
    "alive_crossings",
    "alive_due",
    "alive_permille",
    "figures",
    "fit_base",
    "histories",
]

MIN_REPEAT_BUYERS = 20
CROSSINGS_KEPT = 500_000
"""Most P(alive) crossings a model remembers (~100 B each); emptied when full."""
"""A fit needs some customers who came back: below this the base says nothing about
dropout yet, and the previous version (or none) stays in force."""


@dataclass(frozen=True, slots=True)
class ValueModel:
    """One fitted BG/NBD model of the base, as kept in a cut-point version."""

    params: BgNbdParams
    customers: int
    """How many sampled customers it was fitted on."""
    log_likelihood: float
    fitted_ms: int
    """The as-of instant of the sampled histories."""
    converged: bool = True
    """False for a limit rather than an estimate (``BgNbdFit.converged``): e.g. a base
    whose dropout looks the same for everyone sends a, b to the search bound. Such a fit
    still predicts (a/(a+b) is the common dropout rate), so it serves until a proper
    one exists, but never replaces one."""
    crossings: dict[tuple[int, int, int, int], int] = field(
        default_factory=dict, compare=False, repr=False, hash=False
    )
    """(cut, orders, first, last purchase) -> the instant P(alive) falls below the cut
    (``alive_due``): a function of the history alone, found by bisection, asked again
    at every due step and batch until the customer buys again. Kept with the model it
    was computed under, so a refit starts afresh; bounded by :data:`CROSSINGS_KEPT`."""

    def to_json(self) -> dict[str, object]:
        return {
            **self.params.describe(),
            "unit": "day",
            "customers": self.customers,
            "log_likelihood": self.log_likelihood,
            "fitted_ms": self.fitted_ms,
            "converged": self.converged,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ValueModel:
        if doc.get("unit") != "day":
            raise ValueError(f"model time unit must be 'day', got {doc.get('unit')!r}")
        num = {k: float(doc[k]) for k in ("r", "alpha", "a", "b")}
        return cls(
            params=BgNbdParams(**num),
            customers=int(doc["customers"]),
            log_likelihood=float(doc["log_likelihood"]),
            fitted_ms=int(doc["fitted_ms"]),
            converged=bool(doc.get("converged", True)),
        )


@dataclass(frozen=True, slots=True)
class ValuePolicy:
    """The CLV inputs a business sets (``RFM_CLV_*`` settings)."""

    margin_rate: Decimal = Decimal("0.25")
    years: int = 5
    discount_rate: Decimal = Decimal("0.09")
    acquisition_cost_units: int = 0


def histories(
    frequency: np.ndarray, first_ms: np.ndarray, last_ms: np.ndarray, asof_ms: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BG/NBD's (x, t_x, T) in days: repeat orders, first→last purchase, first→as-of.

    Orders are those still holding money (a fully refunded order never happened), so a
    customer with none counts as a one-time buyer; an as-of before the last purchase
    (a late event) is read as the last purchase itself. Without a repeat order t_x is
    0 whatever the purchase dates say (the lines of one order on two days, or a
    refunded order and a new one, are still one order), as the model requires.
    """
    x = np.maximum(frequency - 1, 0).astype(np.float64)
    span = np.maximum(last_ms - first_ms, 0)
    tx = np.where(x > 0, span, 0) / DAY_MS
    return x, tx, _age(first_ms, span, asof_ms)


def _age(first_ms: np.ndarray, span: np.ndarray, asof_ms: np.ndarray) -> np.ndarray:
    """BG/NBD's T in days (see :func:`histories`)."""
    age: np.ndarray = np.maximum(asof_ms - first_ms, span) / DAY_MS
    return age


def alive_permille(model: ValueModel, cols: Columns, asof_ms: np.ndarray) -> np.ndarray:
    """The ``p`` axis: floor(1000 · P(alive)) at ``asof_ms``; 1000 before a repeat order."""
    x, tx, big_t = histories(cols.frequency, cols.first_ms, cols.last_ms, asof_ms)
    return _permille(model, x, tx, big_t)


def _permille(model: ValueModel, x: np.ndarray, tx: np.ndarray, big_t: np.ndarray) -> np.ndarray:
    """:func:`alive_permille` of :func:`histories`' output (valid by construction: the
    model's input checks are skipped, they cost more than the formula on the few rows the
    timer bisects a few dozen times)."""
    p = bgnbd.p_alive_of_history(model.params, x, tx, big_t)
    return np.floor(p * 1000.0 + 1e-9).astype(np.int64)


def _crossing_ms(
    model: ValueModel, thr: int, x: np.ndarray, tx: np.ndarray, first_ms: np.ndarray
) -> np.ndarray:
    """Where P(alive) falls below ``thr``/1000, by the closed form (before rounding).

    ``P = 1 / (1 + K ρ^(r+x))`` with ``K = a / (b + x − 1)`` and ρ = (α+T)/(α+t_x), so
    ``P < q`` once ``T > (α + t_x) · ((1/q − 1) / K)^(1/(r+x)) − α``.
    """
    pr = model.params
    q = thr / 1000.0
    k = pr.a / (pr.b + np.maximum(x, 1.0) - 1.0)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        big_t = (pr.alpha + tx) * np.exp(np.log((1.0 / q - 1.0) / k) / (pr.r + x)) - pr.alpha
        at = first_ms + np.ceil(big_t * DAY_MS)
    ok = (x > 0) & np.isfinite(at) & (at < 2**62)
    return np.where(ok, np.where(ok, at, 0).astype(np.int64), NEVER)


def alive_due(
    model: ValueModel, thresholds: Sequence[int], cols: Columns, cursor: np.ndarray
) -> np.ndarray:
    """Per customer, the first instant after ``cursor`` at which the ``p`` axis value
    drops below one of ``thresholds`` (``NEVER`` if none is ahead): the earliest of
    :func:`alive_crossings`."""
    best = np.full(len(cursor), NEVER, dtype=np.int64)
    for at in alive_crossings(model, thresholds, cols, cursor).T:
        best = np.minimum(best, at)
    return best


def alive_crossings(
    model: ValueModel, thresholds: Sequence[int], cols: Columns, cursor: np.ndarray
) -> np.ndarray:
    """Per customer (row) and cut (column), the first instant after ``cursor`` at which
    the ``p`` axis value drops below that cut (``NEVER`` if it is not ahead).

    The closed form is float arithmetic, a few milliseconds either way: around it the
    exact instant is found against ``alive_permille`` itself, the function the
    classifier uses (a bracket widened by doubling steps, then bisected), so the timer
    fires exactly where the axis moves: neither where it has not moved yet (and then
    never again) nor after it did. A customer already below a cut at ``cursor`` has that
    drop behind them. Per cut, not only the earliest: the fold (``segments.fold_walk``)
    keeps every crossing of a history and bisects them as its cursor moves.
    """
    x, tx, _ = histories(cols.frequency, cols.first_ms, cols.last_ms, cols.last_ms)
    now = alive_permille(model, cols, cursor)
    out = np.full((len(cursor), len(thresholds)), NEVER, dtype=np.int64)
    known = model.crossings
    if len(known) > CROSSINGS_KEPT:
        known.clear()
    hist = list(
        zip(cols.frequency.tolist(), cols.first_ms.tolist(), cols.last_ms.tolist(), strict=True)
    )
    for col, thr in enumerate(thresholds):
        at = _crossing_ms(model, thr, x, tx, cols.first_ms)
        idx = np.flatnonzero((at != NEVER) & (now >= thr))  # not below yet: ahead
        if idx.size == 0:
            continue
        # the value falls with time for a fixed history, so the first instant after the
        # cursor below the cut is the history's crossing, whatever the cursor: found once
        keys = [(thr, *hist[i]) for i in idx.tolist()]
        found = np.fromiter((known.get(k, NEVER) for k in keys), np.int64, len(keys))
        miss = np.flatnonzero((found == NEVER) | (found <= cursor[idx]))
        if miss.size:
            j = idx[miss]
            sub = Columns(
                cols.last_ms[j], cols.frequency[j], cols.monetary[j], (), cols.first_ms[j]
            )
            fresh = _first_below(model, sub, thr, cursor[j], np.maximum(at[j], cursor[j] + 1))
            found[miss] = fresh
            for m, t in zip(miss.tolist(), fresh.tolist(), strict=True):
                if t != NEVER:
                    known[keys[m]] = t
        out[idx, col] = found
    return out


def _first_below(
    model: ValueModel, cols: Columns, thr: int, cursor: np.ndarray, guess: np.ndarray
) -> np.ndarray:
    """The first instant in (cursor, ∞) where the value is below ``thr``, given that it
    is not at ``cursor`` and falls with time, starting from a close ``guess``."""

    x, tx, _ = histories(cols.frequency, cols.first_ms, cols.last_ms, cols.last_ms)
    first, span = cols.first_ms, np.maximum(cols.last_ms - cols.first_ms, 0)

    def below(t: np.ndarray) -> np.ndarray:  # alive_permille(model, cols, t) < thr
        return _permille(model, x, tx, _age(first, span, t)) < thr

    # bracket (lo, hi]: value ≥ thr at lo, < thr at hi
    hi = guess.copy()
    lo = cursor.copy()
    is_below = below(hi)
    lo = np.where(is_below, lo, hi)  # guess still above: it is a lower end
    step = np.ones_like(hi)
    for _ in range(40):  # widen forward (2^40 ms ≈ 35 years: never reached in practice)
        ahead = ~is_below
        if not ahead.any():
            break
        hi = np.where(ahead, hi + step, hi)
        is_below = np.where(ahead, below(hi), is_below)
        lo = np.where(ahead & ~is_below, hi, lo)
        step *= 2
    back = np.maximum(guess - 1, cursor)  # guesses already below: widen backwards
    step = np.ones_like(hi)
    for _ in range(64):
        check = (back > lo) & (back < hi)
        if not check.any():
            break
        is_above = ~below(back)
        lo = np.where(check & is_above, back, lo)
        hi = np.where(check & ~is_above, back, hi)
        back = np.where(check & ~is_above, np.maximum(back - step, lo), lo)
        step *= 2
    for _ in range(64):  # bisect to adjacent milliseconds
        open_ = hi - lo > 1
        if not open_.any():
            break
        mid = lo + (hi - lo) // 2
        m_below = below(mid)
        hi = np.where(open_ & m_below, mid, hi)
        lo = np.where(open_ & ~m_below, mid, lo)
    return np.where(below(hi), hi, NEVER)


def fit_base(
    states: Sequence[CustomerState], at_ms: int, current: ValueModel | None = None
) -> ValueModel | None:
    """Fit the base's BG/NBD model on ``states`` as of ``at_ms``; what to use next.

    ``current`` (the model in force) stays when the base can't say anything yet (fewer
    than ``MIN_REPEAT_BUYERS`` customers came back) or the new fit found no interior
    maximum while ``current`` is a proper estimate.
    """
    bought = [s for s in states if s.frequency > 0 and s.first_ms is not None]
    cols = Columns.of(bought)
    asof = np.full(len(bought), at_ms, dtype=np.int64)
    x, tx, big_t = histories(cols.frequency, cols.first_ms, cols.last_ms, asof)
    if int((x > 0).sum()) < MIN_REPEAT_BUYERS or not (big_t > 0).any():
        return current
    keep = big_t > 0
    try:
        result = bgnbd.fit(x[keep], tx[keep], big_t[keep])
    except (ValueError, FloatingPointError):
        return current
    if not result.converged and current is not None and current.converged:
        return current
    return ValueModel(
        result.params, result.n_customers, result.log_likelihood, at_ms, result.converged
    )


def figures(
    model: ValueModel, policy: ValuePolicy, cols: Columns, asof_ms: np.ndarray
) -> list[dict[str, object]]:
    """Per customer: P(alive), expected orders next year and CLV (money, to the cent).

    The future part of the CLV is a model estimate in float; it is added unrounded to
    the exact realised margin and acquisition cost, and the sum is rounded once, to the
    cent (half to even).
    """
    n = len(cols.last_ms)
    if n == 0:
        return []
    rows = list(
        zip(
            cols.frequency.tolist(),
            cols.monetary.tolist(),
            cols.first_ms.tolist(),
            cols.last_ms.tolist(),
            np.broadcast_to(np.asarray(asof_ms), (n,)).tolist(),
            strict=True,
        )
    )
    distinct = dict.fromkeys(rows)
    if len(distinct) < n:
        # a customer who moves in several value_figures schemes at once has the same
        # figures in each: compute every distinct history once (the hypergeometric
        # series and the exact sum per customer are the cost), in np.unique's order
        # (sorted rows; a dict, not np.unique: most calls hold a few dozen rows)
        unique = sorted(distinct)
        at = {row: i for i, row in enumerate(unique)}
        f, m, first, last, asof = (np.array(c, dtype=np.int64) for c in zip(*unique, strict=True))
        found = figures(model, policy, Columns(last, f, m, (), first), asof)
        return [dict(found[at[row]]) for row in rows]
    x, tx, big_t = histories(cols.frequency, cols.first_ms, cols.last_ms, asof_ms)
    alive = bgnbd.p_alive(model.params, x, tx, big_t)
    # next year's expected orders are the first of the CLV's yearly periods: one series
    by_year = bgnbd.expected_by_period(model.params, x, tx, big_t, max(policy.years, 1), 365.0)
    year = by_year[:, 0]
    rate = float(policy.margin_rate)
    order_margin = rate * cols.monetary / np.maximum(cols.frequency, 1)
    # Σ_{t=1..years} E_t / (1 + r)^t × the margin of an average order: the CLV's future
    # part (float, unrounded; no year, no future part)
    future = order_margin * bgnbd.discounted(
        by_year[:, : policy.years], float(policy.discount_rate)
    )
    out = []
    with localcontext() as exact:
        exact.prec = 80  # every sum below is exact; the quantize is the one rounding
        for i in range(n):
            units = (
                Decimal(int(cols.monetary[i])) * policy.margin_rate
                - policy.acquisition_cost_units
                + Decimal(float(future[i]))
            )
            out.append(
                {
                    "p_alive": round(float(alive[i]), 4),
                    "expected_orders_1y": round(float(year[i]), 3),
                    "clv": str((units / MONEY_SCALE).quantize(CENT, ROUND_HALF_EVEN)),
                }
            )
    return out
