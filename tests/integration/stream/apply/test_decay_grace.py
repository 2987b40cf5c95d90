"""RFM_DECAY_GRACE on the processor's timer path, real Redis, no broker (issue #20).

A store's till goes offline and uploads its purchases late. Without a grace a decay
fires on the wall clock at its due time, and a purchase dated before it that arrives
afterwards reverses it: marketing gets 高价值 → 休眠 and then 休眠 → 高价值. With a grace
at least as long as the delay, the timer fires a decay only ``grace`` after its due time
(still effective at it), so the late purchase is applied first and what is published is
what an in-order run publishes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from schemas.times import to_ms
from stream.api.metrics import render_metrics
from tests.support.harness import purchase
from tests.support.processor_rig import Rig, make_rig

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, tzinfo=UTC)
HOUR = 3_600_000
DAY = 24 * HOUR
RECENCY = 10 * DAY
KNOBS = {"recency": "10d", "frequency_cut": "2", "monetary_cut": "100", "decay_timer": "false"}
"""rfm8 with a 10-day R cut: two purchases of 80 make a customer 高价值 (high_value), who
decays to 休眠 (dormant) 10 days after the last one."""

Published = tuple[str, str, str, str, str, str]
"""(scheme, customer, from, to, effective_at, cause): what marketing acts on."""


@dataclass(frozen=True)
class Upload:
    """A purchase, dated ``occurred_ms``, reaching the worker at ``arrives_ms``."""

    customer: str
    n: int
    occurred_ms: int
    arrives_ms: int
    amount: str

    def payload(self) -> bytes:
        at = datetime.fromtimestamp(self.occurred_ms / 1000, UTC)
        return orjson.dumps(purchase(self.customer, self.n, at, self.amount))


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    """A loop of the test's own: hypothesis runs examples synchronously."""
    with asyncio.Runner() as r:
        yield r


async def _published(rig: Rig) -> list[Published]:
    rows = await rig.store.outbox_read(0, 100_000)
    out = []
    for _, _, raw in rows:
        t = orjson.loads(raw)
        out.append(
            (
                t["scheme"],
                t["customer_id"],
                t["from_segment"],
                t["to_segment"],
                t["effective_at"],
                t["cause"],
            )
        )
    return out


async def run(
    redis_url: str,
    uploads: Sequence[Upload],
    timer_at: Sequence[int],
    horizon_ms: int,
    grace: str,
) -> tuple[list[Published], dict[str, Any]]:
    """A worker with ``grace`` given ``uploads`` at their arrival times and running its
    decay timer at ``timer_at`` (wall clock); at the end the wall clock passes
    ``horizon_ms`` + grace and the timer runs once more. Returns what it would publish, in
    commit order, and the customers' final states."""
    rig = await make_rig(redis_url, to_ms(T0), decay_grace=grace, **KNOBS)
    try:
        grace_ms = rig.settings.decay_grace
        deliveries: list[tuple[int, int, Upload | None]] = [(u.arrives_ms, 0, u) for u in uploads]
        ticks: list[tuple[int, int, Upload | None]] = [(t, 1, None) for t in timer_at]
        for wall, _, upload in sorted(deliveries + ticks, key=lambda s: (s[0], s[1])):
            rig.clock.set(wall)
            if upload is None:
                await rig.processor.run_due(0)
            else:
                await rig.feed([upload.payload()])
        rig.clock.set(horizon_ms + grace_ms)
        await rig.processor.run_due(0)
        assert not rig.outputs.letters, rig.outputs.letters
        customers = sorted({u.customer for u in uploads})
        states = {c: await rig.store.get_state(0, c) for c in customers}
        return await _published(rig), states
    finally:
        await rig.close()


def in_order(uploads: Sequence[Upload]) -> list[Upload]:
    """The same purchases, each arriving the moment it happened."""
    return [Upload(u.customer, u.n, u.occurred_ms, u.occurred_ms, u.amount) for u in uploads]


def by_customer(published: Sequence[Published]) -> dict[str, list[Published]]:
    """Each customer's transitions in order (the order marketing sees them in: the
    transitions topic is keyed by customer; across customers commit order may differ)."""
    out: dict[str, list[Published]] = {}
    for t in published:
        out.setdefault(t[1], []).append(t)
    return out


# ---------------------------------------------------------------------- the example
def _offline_till() -> tuple[list[Upload], int]:
    """vip buys twice at T0 (high_value, due to decay at T0 + 10d); a third purchase,
    dated T0 + 9d, is uploaded by a till that was offline until 1 h after that due time.
    Returns the uploads and the due time."""
    t0 = to_ms(T0)
    due = t0 + RECENCY
    return [
        Upload("vip", 1, t0, t0, "80"),
        Upload("vip", 2, t0, t0, "80"),
        Upload("vip", 3, t0 + 9 * DAY, due + HOUR, "20"),
    ], due


async def test_without_grace_the_wrong_decay_and_its_reversal_are_published(
    redis_url: str,
) -> None:
    """Today's behaviour (grace 0), and what makes the property below able to fail: the
    timer at 30 min past the due time fires the decay, the late purchase reverses it."""
    uploads, due = _offline_till()
    horizon = due + 20 * DAY
    got, _ = await run(redis_url, uploads, [due + HOUR // 2], horizon, grace="0")
    stamp = "2026-03-11T00:00:00.000+00:00"
    assert got[:4] == [
        ("rfm8", "vip", "none", "new", "2026-03-01T00:00:00.000+00:00", "first_purchase"),
        ("rfm8", "vip", "new", "high_value", "2026-03-01T00:00:00.000+00:00", "purchase"),
        ("rfm8", "vip", "high_value", "dormant", stamp, "recency_decay"),
        ("rfm8", "vip", "dormant", "high_value", stamp, "purchase"),
    ]
    want, _ = await run(redis_url, in_order(uploads), [], horizon, grace="0")
    assert got != want


async def test_with_grace_the_late_purchase_comes_first_and_nothing_is_reversed(
    redis_url: str,
) -> None:
    """A grace of 2 days, longer than the till's delay: the timer at 30 min past the due
    time fires nothing, the late purchase is applied, and the decay fires once, due 10
    days after it and effective then. Catches a timer that ignores the grace, or a grace
    that moves effective_at."""
    uploads, due = _offline_till()
    horizon = due + 20 * DAY
    got, states = await run(redis_url, uploads, [due + HOUR // 2, due + HOUR], horizon, "2d")
    assert got == [
        ("rfm8", "vip", "none", "new", "2026-03-01T00:00:00.000+00:00", "first_purchase"),
        ("rfm8", "vip", "new", "high_value", "2026-03-01T00:00:00.000+00:00", "purchase"),
        ("rfm8", "vip", "high_value", "dormant", "2026-03-20T00:00:00.000+00:00", "recency_decay"),
    ]
    want, want_states = await run(redis_url, in_order(uploads), [], horizon, grace="0")
    assert (got, states) == (want, want_states)


async def test_the_timer_fires_grace_after_the_due_time_and_measures_it(redis_url: str) -> None:
    """run_due fires nothing until due + grace, then the decay effective at the due
    time; the schedule gauge counts it as not fired only from due + grace on; /metrics
    shows the grace and the due-to-commit delay. Catches the timer, gauge or histogram
    reading the wall clock without the grace."""
    t0 = to_ms(T0)
    due = t0 + RECENCY
    rig = await make_rig(redis_url, t0, decay_grace="1h", **KNOBS)
    try:
        await rig.feed([u.payload() for u in _offline_till()[0][:2]])
        rig.clock.set(due + HOUR - 1)
        assert await rig.store.tallies.due_count(0, rig.processor.clock.now_ms()) == 0
        assert await rig.processor.run_due(0) == 0
        assert [t[3] for t in await _published(rig)] == ["new", "high_value"]

        rig.clock.set(due + HOUR + 2500)
        assert await rig.store.tallies.due_count(0, rig.processor.clock.now_ms()) == 1
        assert await rig.processor.run_due(0) == 1
        decay = (await _published(rig))[-1]
        assert decay[2:] == (
            "high_value",
            "dormant",
            "2026-03-11T00:00:00.000+00:00",
            "recency_decay",
        )

        text = render_metrics(rig.processor, True, 0)
        assert "rfm_decay_grace_seconds 3600.0" in text
        assert 'rfm_decay_delay_seconds_bucket{le="900"} 0' in text
        assert 'rfm_decay_delay_seconds_bucket{le="3600"} 0' in text
        assert 'rfm_decay_delay_seconds_bucket{le="14400"} 1' in text
        assert "rfm_decay_delay_seconds_sum 3602.5" in text
        assert "rfm_decay_delay_seconds_count 1" in text
    finally:
        await rig.close()


# ---------------------------------------------------------------------- the property
DELAY = 2 * DAY
"""The longest an upload is late (D); the worker's grace is D."""


@st.composite
def _histories(draw: st.DrawFn) -> tuple[list[Upload], list[int], int]:
    """A few customers' purchases days apart (so decays fall between them), each uploaded
    up to D late — a customer's uploads in the order they happened (a till uploads its
    journal in order; invariant 2 covers state, not the transitions, of reordered
    events) — and the timer's runs at random instants."""
    t0 = to_ms(T0)
    uploads: list[Upload] = []
    for c in range(draw(st.integers(1, 3))):
        at, arrived = t0, t0
        for n in range(draw(st.integers(1, 5))):
            at += draw(st.integers(0, 15 * 24)) * HOUR
            late = draw(st.integers(0, DELAY // HOUR)) * HOUR
            arrived = max(arrived, at + late)  # in order per customer, still <= D late
            amount = draw(st.sampled_from(["20", "60", "80", "150"]))
            uploads.append(Upload(f"c{c}", n, at, arrived, amount))
    horizon = max(u.arrives_ms for u in uploads) + 3 * RECENCY
    timer_at = draw(st.lists(st.integers(t0, horizon), max_size=8))
    return uploads, timer_at, horizon


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=_histories())
def test_with_grace_at_least_the_delay_late_uploads_publish_what_in_order_ones_do(
    runner: asyncio.Runner, redis_url: str, history: tuple[list[Upload], list[int], int]
) -> None:
    """Catches any time-driven transition fired before an event dated earlier could
    arrive (a reversal, a wrong from/to or effective_at), or a grace that loses or
    delays a decay past the horizon."""
    uploads, timer_at, horizon = history
    got, states = runner.run(run(redis_url, uploads, timer_at, horizon, "2d"))
    want, want_states = runner.run(run(redis_url, in_order(uploads), [], horizon, "0"))
    event(f"decays: {sum(t[5] == 'recency_decay' for t in want)}")
    event(f"late uploads: {sum(u.arrives_ms > u.occurred_ms for u in uploads)}")
    assert by_customer(got) == by_customer(want)
    assert states == want_states
