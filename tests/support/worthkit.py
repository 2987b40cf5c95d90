"""Helpers of the worth crash test: a stream with refunds, and worth sums vs a recount.

Kept apart from :mod:`tests.support.failkit` (another suite's harness): the failure
tests compare segment sizes with a recount there; here the same comparison for the
worth hashes (revenue, orders, the Pareto summary), against states computed from the
events by the pure engine in one uninterrupted pass.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from segments import CustomerState
from segments.worth import pareto, recount
from state.tallies import WorthSums
from tests.support.harness import Cluster, history, purchase

__all__ = ["assert_worth_matches", "history_with_refunds"]


def history_with_refunds(customers: int, events: int, seed: int) -> list[dict[str, Any]]:
    """:func:`~tests.support.harness.history` with one purchase in five refunded, half of
    them in full (a one-order customer then leaves the base), right after it."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for ev in history(customers, events, seed):
        out.append(ev)
        if rng.random() < 0.2:
            amount = ev["amount"] if rng.random() < 0.5 else "1.00"
            refund = purchase(ev["customer_id"], 0, _later(ev["occurred_at"]), amount)
            refund.update(kind="refund", refund_of=ev["order_id"], event_id=f"r-{ev['event_id']}")
            out.append(refund)
    return out


def _later(iso: str) -> datetime:
    return datetime.fromisoformat(iso) + timedelta(minutes=1)


async def assert_worth_matches(
    cluster: Cluster, partitions: int, states: Mapping[str, CustomerState | None]
) -> WorthSums:
    """The worth hashes the commits kept equal a recount of ``states``, and so do the
    Pareto figures read from them; returns what was read."""
    want = recount(s for s in states.values() if s is not None)
    store = cluster.store()
    try:
        got = await store.tallies.worth(range(partitions))
    finally:
        await store.close()
    assert got.revenue == want.revenue, f"revenue {got.revenue} != recount {want.revenue}"
    assert got.orders == want.orders, f"orders {got.orders} != recount {want.orders}"
    assert (got.counts, got.sums) == (want.counts, want.sums), "Pareto summary != recount"
    assert pareto(got.counts, got.sums) == pareto(want.counts, want.sums)
    return got
