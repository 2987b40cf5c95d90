"""What one customer's state can hold (segments.limits), in both of the engine's paths."""

from __future__ import annotations

import copy

from segments import Engine, Purchase, Refund, Rfm8
from segments.limits import Limits
from segments.model import CustomerState, Outcome
from tests.unit.segments.fixtures import Bands

DAY = 86_400_000
UNIT = 10_000


def engines(limits: Limits | None = None) -> tuple[Engine, Engine]:
    """(folding, round-based) engines over the same schemes and limits."""

    def schemes() -> list:
        return [Rfm8(30 * DAY, 3, 500 * UNIT), Bands()]

    folding, rounds = Engine(schemes(), limits=limits), Engine(schemes(), limits=limits)
    assert folding.foldable
    rounds.foldable = False
    return folding, rounds


def both(
    limits: Limits | None, batches: list[list[Purchase | Refund]]
) -> tuple[dict[str, CustomerState], list[Outcome]]:
    """Apply ``batches`` with both paths; assert they agree; return the folding path's."""
    results = []
    for engine in engines(limits):
        states: dict[str, CustomerState] = {}
        outs = [engine.apply_events(states, copy.deepcopy(b)) for b in batches]
        results.append((states, outs))
    (folded, f_outs), (rounded, r_outs) = results
    assert folded == rounded
    assert [o.rejected for o in f_outs] == [o.rejected for o in r_outs]
    return folded, f_outs


def test_dedupe_ids_and_orders_of_one_customer_stay_within_their_limits() -> None:
    """5,000 purchases in a day: every one counts, the state keeps the latest 4,096 ids
    and 1,000 orders (each a list that would otherwise grow with every event)."""
    buys = [Purchase("c", f"e{i}", i * 1000, UNIT, f"o{i}") for i in range(5000)]
    states, _ = both(None, [buys[i : i + 700] for i in range(0, 5000, 700)])
    s = states["c"]
    assert (s.frequency, s.monetary) == (5000, 5000 * UNIT)
    assert len(s.seen) == Limits().seen == 4096
    assert list(s.orders) == [f"o{i}" for i in range(4000, 5000)]
    # the latest ids are still guarded; a refund of an order past the limit is held
    again, outs = both(None, [buys, buys[-10:], [Refund("c", "r", 6_000_000, UNIT, "o3")]])
    assert outs[1].duplicates == 10 and again["c"].frequency == 5000
    assert [h.order_id for h in again["c"].held] == ["o3"]


def test_a_refund_past_the_held_limits_is_dead_lettered_at_once() -> None:
    limits = Limits(held=3, held_chars=3 * 200)
    small = [Refund("c", f"r{i}", i, UNIT, f"later{i}", "m" * 100) for i in range(5)]
    big = Refund("d", "big", 0, UNIT, "later", "m" * 600)
    states, outs = both(limits, [small[:2], small[2:], [big]])
    assert [h.event_id for h in states["c"].held] == ["r0", "r1", "r2"]
    assert states["d"].held == []
    refused = [r for o in outs for r in o.rejected]
    assert [(r.event_id, r.error_class, r.ref) for r in refused] == [
        ("r3", "RefundHoldLimit", "m" * 100),
        ("r4", "RefundHoldLimit", "m" * 100),
        ("big", "RefundHoldLimit", "m" * 600),
    ]
    assert "already holds 3 refunds" in refused[0].message
    assert "can't hold this one: 656 characters with the 0 already held" in refused[2].message
    # a refused refund is not remembered as applied: sent again once there is room, it holds
    states["c"].held.pop()
    engine = engines(limits)[0]
    out = engine.apply_events(states, [small[3]])
    assert out.rejected == [] and [h.event_id for h in states["c"].held] == ["r0", "r1", "r3"]
