"""A sale: it adds to its order, and settles the refunds that were waiting for it.

A pure helper of :class:`~segments.engine.Engine` and :func:`segments.fold.fold`, which
both apply purchases the same way (the fold's outcome is the rounds' outcome).
"""

from __future__ import annotations

from segments import refunds, windows
from segments.model import CustomerState, Purchase, Rejection

__all__ = ["purchase"]


def purchase(s: CustomerState, e: Purchase, window_ms: int) -> list[Rejection]:
    """Add a sale; frequency counts orders that still hold money.

    ``window_ms`` is the longest rolling window (0: none), whose per-day totals count the
    order on the day of its first line. Refunds held for the order are applied now; those
    larger than what it holds come back as rejections.
    """
    # first/last over every purchase ever, refunded or not: order independent
    at, units = e.occurred_ms, e.amount_units
    if s.first_ms is None or at < s.first_ms:
        s.first_ms = at
    if at > s.last_ms:
        s.last_ms = at
    s.monetary += units
    key = e.order_id or e.event_id
    order = s.orders.get(key)
    if order is None:
        s.orders[key] = [units, units, at]
        s.frequency += 1
        if window_ms:
            windows.add(s, at, 1, units, window_ms)
    else:  # another sale line under the same order id
        revived = order[0] == 0
        if revived:
            s.frequency += 1
        order[0] += units
        order[1] += units
        if window_ms:
            windows.add(s, order[2], int(revived), units, window_ms)
    rejected: list[Rejection] = []
    if not s.held:
        return rejected
    for h in [h for h in s.held if h.order_id == key]:
        s.held.remove(h)
        rejection = refunds.retract(s, key, h.event_id, h.amount_units, h.ref, window_ms)
        if rejection is not None:
            rejected.append(rejection)
    return rejected
