"""Refunds: retract what their order still holds, or wait for a purchase that hasn't come.

Pure helpers of :class:`~segments.engine.Engine`: a refund takes back its amount from the
order (and the order from the frequency once fully refunded, and from the rolling-window
day it counted on); one larger than what the order holds is rejected; one whose order is
unknown is held for ``hold_ms`` and rejected if no purchase arrives by then, or at once
if the customer's held refunds are at their limit (:mod:`segments.limits`).
"""

from __future__ import annotations

from segments import windows
from segments.limits import Limits, held_chars
from segments.model import CustomerState, HeldRefund, Refund, Rejection

__all__ = ["expire_held", "refund", "retract"]


def refund(
    s: CustomerState, e: Refund, asof: int, hold_ms: int, window_ms: int, limits: Limits
) -> Rejection | None:
    """Apply ``e`` now, or hold it until ``asof + hold_ms`` if its order isn't known yet."""
    if e.order_id not in s.orders:
        held = HeldRefund(
            e.event_id, e.order_id, e.amount_units, e.occurred_ms, asof + hold_ms, e.ref
        )
        refused = _over_limit(s, held, limits)
        if refused is not None:
            return Rejection(s.customer_id, e.event_id, e.ref, "RefundHoldLimit", refused)
        s.held.append(held)
        return None
    return retract(s, e.order_id, e.event_id, e.amount_units, e.ref, window_ms)


def _over_limit(s: CustomerState, h: HeldRefund, limits: Limits) -> str | None:
    """Why holding ``h`` would take ``s`` past its limits (None: it fits)."""
    why = f"refund_of: order {h.order_id} is not known yet and customer {s.customer_id} "
    if len(s.held) >= limits.held:
        return why + (
            f"already holds {len(s.held)} refunds waiting for their purchase, the most "
            "one customer may hold"
        )
    size, total = held_chars(h), sum(map(held_chars, s.held))
    if total + size > limits.held_chars:
        return why + (
            f"can't hold this one: {size} characters with the {total} already held "
            f"would pass {limits.held_chars}, the most one customer's held refunds may take"
        )
    return None


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
