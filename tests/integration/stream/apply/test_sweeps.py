"""Sweeps (:mod:`stream.apply.sweeps`): after a rules change, every customer of a partition
is re-evaluated in the background, a bounded chunk per step, progress committed with
the customers. A real Processor on a real Redis through the rig, no broker.

Each test names, in its docstring, the broken behaviour it catches.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from schemas.times import to_ms
from segments.rules import build_engine
from tests.support.harness import purchase
from tests.support.processor_rig import Rig, make_rig, sweep_to_end

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CUSTOMERS = 100
BATCH = 4


@pytest.fixture
async def rig(redis_url: str) -> AsyncIterator[Rig]:
    r = await make_rig(redis_url, to_ms(NOW), decay_timer="false", sweep_batch=str(BATCH))
    yield r
    await r.close()


def _amount(i: int) -> str:
    """Every other customer between a monetary cut of 500 and rfm8's 1000."""
    return "600" if i % 2 == 0 else "200"


async def _populate(rig: Rig) -> None:
    """One purchase each (rfm8: all ``new``), then the partition swept under these rules,
    as a live worker leaves it."""
    at = NOW - timedelta(days=5)
    await rig.feed([orjson.dumps(purchase(f"c{i}", i, at, _amount(i))) for i in range(CUSTOMERS)])
    await sweep_to_end(rig, to_ms(NOW))
    assert await _outbox_causes(rig) == {"first_purchase": CUSTOMERS}


async def _outbox(rig: Rig) -> list[dict[str, Any]]:
    rows = await rig.store.outbox_read(0, 100_000)
    return [orjson.loads(payload) for _, _, payload in rows]


async def _outbox_causes(rig: Rig) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in await _outbox(rig):
        out[t["cause"]] = out.get(t["cause"], 0) + 1
    return out


def _lower_monetary_cut(rig: Rig) -> None:
    """A rules change: rfm8's M cut from 1000 down to 500."""
    settings = rig.settings.model_copy(update={"monetary_cut": Decimal("500")})
    rig.processor.use(build_engine(settings))


async def test_a_rules_change_re_evaluates_every_customer_in_bounded_steps(rig: Rig) -> None:
    """Catches a sweep that does the whole partition in one step (it holds the partition
    lock: live batches would wait behind it), one that stops after its first chunk or
    loses its cursor between steps (customers left under the old rules), and one that
    moves a customer twice."""
    await _populate(rig)
    _lower_monetary_cut(rig)
    target = rig.processor.sweep_target()

    steps, chunks, markers = 0, [], []
    while True:
        swept = rig.processor.stats.swept
        done = await rig.processor.sweep(0, to_ms(NOW))
        steps += 1
        chunks.append(rig.processor.stats.swept - swept)
        markers.append(await rig.store.meta_field(0, "sweep"))
        if done:
            break
        assert steps < CUSTOMERS, "the sweep never finishes"

    assert steps > 1, f"one step swept all {CUSTOMERS} customers (sweep_batch={BATCH})"
    assert max(chunks) <= 16 * BATCH, chunks  # scan_customers' documented bound
    assert markers[-1] == f"{target}|done"
    assert all(m is not None and m.startswith(f"{target}|") for m in markers)
    assert all(m != f"{target}|done" for m in markers[:-1]), markers

    moved = [t for t in await _outbox(rig) if t["cause"] == "rules_change"]
    assert sorted(t["customer_id"] for t in moved) == sorted(
        f"c{i}" for i in range(CUSTOMERS) if _amount(i) == "600"
    )
    assert {(t["from_segment"], t["to_segment"]) for t in moved} == {("new", "develop")}
    counts = await rig.store.tallies.segment_counts([0])
    assert {k: n for k, n in counts["rfm8"].items() if n} == {
        "new": CUSTOMERS // 2,
        "develop": CUSTOMERS // 2,
    }


async def test_a_finished_sweep_does_no_more_work(rig: Rig) -> None:
    """Catches a sweep that forgets it is done (it would re-scan the partition on every
    timer tick, forever)."""
    await _populate(rig)
    swept = rig.processor.stats.swept
    outbox = await _outbox(rig)
    assert await rig.processor.sweep(0, to_ms(NOW)) is True
    assert rig.processor.stats.swept == swept
    assert await _outbox(rig) == outbox


async def test_every_customer_is_stamped_with_the_rules_it_was_evaluated_under(
    rig: Rig,
) -> None:
    """An event applied under the new rules before the sweep reaches its customer counts
    as that customer's re-evaluation; the sweep stamps the rest. Catches a path that
    does not stamp (the customer would be re-evaluated again, and a later change's cause,
    ``rules_change`` or ``recalibration``, told from a stale stamp) and a sweep that
    moves a customer an event already moved."""
    await _populate(rig)
    _lower_monetary_cut(rig)
    stamp = rig.processor.engine.stamp
    at = NOW - timedelta(days=1)
    await rig.feed([orjson.dumps(purchase("c0", 1000, at, "10"))])  # c0: 610, under new rules
    c0 = await rig.store.get_state(0, "c0")
    assert c0 is not None and c0.stamp == stamp
    await sweep_to_end(rig, to_ms(NOW))

    states = [await rig.store.get_state(0, f"c{i}") for i in range(CUSTOMERS)]
    assert [s.stamp if s else None for s in states] == [stamp] * CUSTOMERS
    moves = [t for t in await _outbox(rig) if t["customer_id"] == "c0"]
    assert [t["cause"] for t in moves] == ["first_purchase", "purchase"]
    moved = [t["customer_id"] for t in await _outbox(rig) if t["cause"] == "rules_change"]
    assert len(moved) == len(set(moved)) == CUSTOMERS // 2 - 1


async def test_a_fenced_sweep_step_writes_nothing(rig: Rig) -> None:
    """Catches a sweep step committed with a stale epoch (the new owner and the old one
    would both publish the rules change)."""
    await _populate(rig)
    _lower_monetary_cut(rig)
    outbox = await _outbox(rig)
    marker = await rig.store.meta_field(0, "sweep")
    await rig.store.claim(0)
    await rig.processor.sweep(0, to_ms(NOW))
    assert 0 in rig.processor.fences
    assert await _outbox(rig) == outbox
    assert await rig.store.meta_field(0, "sweep") == marker
    assert await rig.processor.sweep(0, to_ms(NOW)) is True  # not ours: nothing to do
