"""What one customer's state can hold (invariant 10), and what a held refund costs.

Every commit writes each changed customer's whole state, and Redis runs the commit as
one script: a state that grows with its input makes every later event of that customer
slower, and past ~4 MB the store refuses it (:data:`state.codec.MAX_FIELDS`). So
everything in :class:`~segments.model.CustomerState` that grows with input is bounded:

- ``held`` (refunds waiting for their purchase): at most :attr:`Limits.held` of them,
  :attr:`Limits.held_chars` characters in all (a held refund keeps the pointer to its
  original message, which a dead letter needs: up to the whole message). A refund that
  doesn't fit is refused at once (``RefundHoldLimit``, :mod:`segments.refunds`).
- ``orders`` (the refund window): at most :attr:`Limits.orders`; past that the oldest
  one is forgotten, as after ``order_retention`` (a later refund of it is held, then
  dead-lettered ``RefundUnknownOrder``).
- ``seen`` (the dedupe window): at most :attr:`Limits.seen` event ids; past that the
  oldest is forgotten, as after ``dedupe_retention`` (the offset still guards every
  redelivery; only a producer resending an event after that many newer ones of the same
  customer would be applied again).
- ``history``: ``Policy.history`` transitions (at most 100, ``Settings.history_size``);
  ``days``: one entry per purchase day inside the longest rolling window
  (:func:`segments.windows.prune`); ``segments``: one per scheme.

With every list at its limit a state is a few hundred kB
(tests/integration/state/test_script_bounds.py measures one), far below the store's backstop.
"""

from __future__ import annotations

from dataclasses import dataclass

from segments import windows
from segments.model import CustomerState, HeldRefund
from segments.policy import Policy

__all__ = ["Limits", "forget", "held_chars"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Most items one customer's state keeps of each kind that grows with input."""

    held: int = 32
    """Refunds held waiting for their purchase."""
    held_chars: int = 32_768
    """Characters those held refunds take in all (see :func:`held_chars`)."""
    orders: int = 1_000
    """Orders remembered for refunds (within ``order_retention``)."""
    seen: int = 4_096
    """Event ids remembered for dedupe (within ``dedupe_retention``)."""


_HELD_NUMBERS = 48
"""What a held refund's amount and two times take in the stored JSON, at most."""


def held_chars(h: HeldRefund) -> int:
    """About what ``h`` takes in the stored state (its ids, numbers and message pointer)."""
    return len(h.event_id) + len(h.order_id) + len(h.ref) + _HELD_NUMBERS


def forget(s: CustomerState, asof: int, policy: Policy, limits: Limits, window_ms: int) -> None:
    """Drop dedupe digests and orders older than their windows, or past their limits,
    and purchase days outside the longest rolling window (``window_ms``): bounded memory,
    and a bounded state to commit.

    Both dicts are in insertion order, so expired entries are popped from the front:
    O(1) amortised per event even for a customer with thousands of orders. Digests
    are stamped with the (non-decreasing) as-of time, so that is exact; an order that
    arrived out of event-time order may outlive its window until it reaches the front.
    Past a limit, the front (the oldest applied) goes first too.
    """
    seen, horizon = s.seen, asof - policy.dedupe_ms
    while seen and (oldest := next(iter(seen))) is not None and seen[oldest] < horizon:
        del seen[oldest]
    orders, horizon = s.orders, asof - policy.order_retention_ms
    while orders and (first := next(iter(orders))) is not None and orders[first][2] < horizon:
        del orders[first]
    while len(seen) > limits.seen:
        del seen[next(iter(seen))]
    while len(orders) > limits.orders:
        del orders[next(iter(orders))]
    if s.days:
        windows.prune(s, asof, window_ms)
