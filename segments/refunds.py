"""Refunds: retract what their order still holds, or wait for a purchase that hasn't come.

Pure helpers of :class:`~segments.engine.Engine`: a refund takes back its amount from the
order (and the order from the frequency once fully refunded, and from the rolling-window
day it counted on); one larger than what the order holds is rejected; one whose order is
unknown is held for ``hold_ms`` and rejected if no purchase arrives by then.
"""

from __future__ import annotations

from segments import windows
from segments.model import CustomerState, HeldRefund, Refund, Rejection

__all__ = ["expire_held", "refund", "retract"]


def refund(
    s: CustomerState, e: Refund, asof: int, hold_ms: int, window_ms: int
) -> Rejection | None:
    """Apply ``e`` now, or hold it until ``asof + hold_ms`` if its order isn't known yet."""
    if e.order_id not in s.orders:
        s.held.append(
            HeldRefund(e.event_id, e.order_id, e.amount_units, e.occurred_ms, asof + hold_ms, e.ref)
        )
        return None
    return retract(s, e.order_id, e.event_id, e.amount_units, e.ref, window_ms)


def retract(
    s: CustomerState, order_id: str, event_id: str, units: int, ref: str, window_ms: int
) -> Rejection | None:
    order = s.orders[order_id]
    if units > order[0]:
        return Rejection(
            s.customer_id,
            event_id,
            ref,
            "RefundExceedsOrder",
            f"amount: refund of {units} units exceeds the {order[0]} units "
            f"order {order_id} still holds",
        )
    order[0] -= units
    s.monetary -= units
    if order[0] == 0:
        s.frequency -= 1
    windows.add(s, order[2], -int(order[0] == 0), -units, window_ms)
    return None


def expire_held(s: CustomerState, t: int, hold_ms: int) -> list[Rejection]:
    """Reject the held refunds whose wait ended by ``t``."""
    expired = [h for h in s.held if h.until_ms <= t]
    s.held = [h for h in s.held if h.until_ms > t]
    return [
        Rejection(
            s.customer_id,
            h.event_id,
            h.ref,
            "RefundUnknownOrder",
            f"refund_of: no purchase of order {h.order_id} arrived within the "
            f"{hold_ms} ms hold period",
        )
        for h in expired
    ]
