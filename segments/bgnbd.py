"""BG/NBD: who is still a customer, and how many purchases they will make.

The model, its likelihood and the fit are in :mod:`segments.bgnbd_model` (whose
docstring explains the model); the predictions from fitted parameters (P(alive),
expected purchases, CLV) in :mod:`segments.bgnbd_predict`. This module is the one
to import: it holds both.
"""

from __future__ import annotations

from segments.bgnbd_model import (
    BgNbdFit,
    BgNbdParams,
    _objective,
    fit,
    log_likelihood,
)
from segments.bgnbd_predict import (
    clv_units,
    discounted,
    discounted_purchases,
    expected_by_period,
    expected_purchases,
    expected_purchases_new,
    p_alive,
    p_alive_of_history,
)

__all__ = [
    "BgNbdFit",
    "BgNbdParams",
    "_objective",
    "clv_units",
    "discounted",
    "discounted_purchases",
    "expected_by_period",
    "expected_purchases",
    "expected_purchases_new",
    "fit",
    "log_likelihood",
    "p_alive",
    "p_alive_of_history",
]
