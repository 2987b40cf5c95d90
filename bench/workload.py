"""The benchmark workload: seeded, skewed, time-ordered POS events, and producing them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaProducer

from tests.support.harness import purchase

DAY_MS = 86_400_000
END = datetime(2025, 12, 31, tzinfo=UTC)  # event time ends here (in the past: no FutureEvent)
SPAN_DAYS = 548  # ~1.5 years
REFUND_SHARE = 0.015


# ---------------------------------------------------------------------- workload
def generate(events: int, customers: int, seed: int, end: datetime = END) -> list[dict[str, Any]]:
    """Seeded purchases and refunds, sorted by event time (refund after its purchase),
    over the ``SPAN_DAYS`` before ``end``.

    Purchase rates and basket sizes are lognormal per customer (a few heavy buyers, a long
    tail of occasional ones); customers join over the first ~70 % of the span and about
    30 % of them stop buying part-way. Refunds take back a whole order or part of it,
    1 hour to 30 days after the purchase.
    """
    rng = np.random.default_rng(seed)
    n = customers
    span = SPAN_DAYS * DAY_MS
    start_ms = int(end.timestamp() * 1000) - span
    rate = rng.lognormal(0.0, 1.2, n)
    rate /= rate.sum()
    basket_cents = rng.lognormal(np.log(15_000), 0.7, n)  # typical basket ~150 CNY
    join = rng.uniform(0.0, 0.7, n) * span
    stop = np.where(rng.random(n) < 0.3, join + rng.uniform(0.1, 0.6, n) * (span - join), span)

    n_refunds = round(events * REFUND_SHARE)
    n_buys = events - n_refunds
    who = rng.choice(n, size=n_buys, p=rate)
    at = (start_ms + join[who] + rng.random(n_buys) * (stop[who] - join[who])).astype(np.int64)
    cents = np.clip(np.rint(rng.lognormal(np.log(basket_cents[who]), 0.5)), 1, 99_999_999)
    cents = cents.astype(np.int64)

    src = rng.choice(n_buys, size=n_refunds, replace=False)  # each refunded order once
    back_at = at[src] + rng.integers(3_600_000, 30 * DAY_MS, n_refunds)
    back_at = np.maximum(np.minimum(back_at, start_ms + span), at[src] + 1)
    partial = np.floor(cents[src] * rng.uniform(0.2, 0.9, n_refunds)).astype(np.int64)
    back_cents = np.where(rng.random(n_refunds) < 0.5, cents[src], np.maximum(partial, 1))

    # rows: (time, kind 0=purchase 1=refund, customer, cents, purchase row refunded)
    times = np.concatenate([at, back_at])
    kinds = np.concatenate([np.zeros(n_buys, np.int64), np.ones(n_refunds, np.int64)])
    custs = np.concatenate([who, who[src]])
    amounts = np.concatenate([cents, back_cents])
    refs = np.concatenate([np.full(n_buys, -1, np.int64), src])
    order = np.lexsort((kinds, times))
    order_id_of_row: dict[int, str] = {}
    out: list[dict[str, Any]] = []
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for k, i in enumerate(order.tolist()):
        c = f"c{int(custs[i]):06d}"
        when = epoch + timedelta(milliseconds=int(times[i]))
        amount = f"{int(amounts[i]) // 100}.{int(amounts[i]) % 100:02d}"
        extra: dict[str, Any] = {"store_id": f"s{int(custs[i]) % 97:03d}", "channel": "pos"}
        if kinds[i]:
            extra = {**extra, "kind": "refund", "refund_of": order_id_of_row[int(refs[i])]}
        ev = purchase(c, k, when, amount, **extra)
        if not kinds[i]:
            order_id_of_row[i] = ev["order_id"]
        out.append(ev)
    return out


async def produce(
    bootstrap: str, topic: str, events: Sequence[dict[str, Any]]
) -> list[tuple[int, int]]:
    """Produce keyed by customer_id (aiokafka's default murmur2 partitioner, as the worker
    expects); returns each event's (partition, offset)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=20,
        max_batch_size=512 * 1024,
        acks=1,
        enable_idempotence=False,
    )
    await producer.start()
    try:
        futs = [
            await producer.send(topic, orjson.dumps(ev), key=ev["customer_id"].encode())
            for ev in events
        ]
        metas = await asyncio.gather(*futs)
    finally:
        await producer.stop()
    return [(m.partition, m.offset) for m in metas]
