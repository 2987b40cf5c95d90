"""What rfm-stream is measured against: plain aiokafka consume + decode, and pandas."""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.settings import Settings
from state.store import RedisStore

FETCH = {"max_partition_fetch_bytes": 8 * 1024 * 1024, "fetch_max_bytes": 64 * 1024 * 1024}


# ---------------------------------------------------------------------- a. plain aiokafka
async def plain_aiokafka(bootstrap: str, topic: str, total: int, batch: int) -> float:
    """Seconds to read and ``orjson.loads`` every record of ``topic`` (consumer start
    included, as in the backfill's timing)."""
    t0 = time.perf_counter()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **FETCH,
    )
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            await consumer.client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        n = 0
        deadline = time.monotonic() + 600
        while n < total:
            records = await consumer.getmany(timeout_ms=500, max_records=batch)
            for recs in records.values():
                for r in recs:
                    orjson.loads(r.value)
                n += len(recs)
            if time.monotonic() > deadline:
                raise RuntimeError(f"plain consumer read {n} of {total} records in 600 s")
    finally:
        await consumer.stop()
    if n != total:
        raise RuntimeError(f"plain consumer read {n} records, produced {total}")
    return time.perf_counter() - t0


# ---------------------------------------------------------------------- d. pandas
@dataclass
class PandasRun:
    construct_s: float
    parse_s: float
    groupby_s: float
    summary: pd.DataFrame


def pandas_summary(events: list[dict[str, Any]]) -> PandasRun:
    """Per customer: frequency (orders not fully refunded), monetary (purchases - refunds,
    in 1/10,000 units like the engine), first and last purchase time (epoch ms)."""
    gc.collect()
    t0 = time.perf_counter()
    df = pd.DataFrame(events)
    t1 = time.perf_counter()
    units = (pd.to_numeric(df["amount"]) * 100).round().astype("int64") * 100
    at = pd.to_datetime(df["occurred_at"], format="ISO8601", utc=True)
    ms = at.dt.as_unit("ms").astype("int64")
    is_refund = df["kind"].eq("refund").to_numpy() if "kind" in df else np.zeros(len(df), bool)
    t2 = time.perf_counter()
    buys = pd.DataFrame(
        {
            "customer": df["customer_id"].to_numpy()[~is_refund],
            "order": df["order_id"].to_numpy()[~is_refund],
            "units": units.to_numpy()[~is_refund],
            "ms": ms.to_numpy()[~is_refund],
        }
    )
    backs = pd.DataFrame(
        {
            "customer": df["customer_id"].to_numpy()[is_refund],
            "order": df["refund_of"].to_numpy()[is_refund] if "refund_of" in df else [],
            "units": units.to_numpy()[is_refund],
        }
    )
    per_order = buys.groupby(["customer", "order"], sort=False)["units"].sum()
    refunded = backs.groupby(["customer", "order"], sort=False)["units"].sum()
    remaining = per_order - refunded.reindex(per_order.index, fill_value=0)
    g = buys.groupby("customer", sort=False)
    summary = pd.DataFrame(
        {
            "frequency": (remaining > 0).groupby(level="customer", sort=False).sum(),
            "monetary": g["units"].sum(),
            "first_ms": g["ms"].min(),
            "last_ms": g["ms"].max(),
        }
    )
    back_total = backs.groupby("customer", sort=False)["units"].sum()
    summary["monetary"] -= back_total.reindex(summary.index, fill_value=0)
    t3 = time.perf_counter()
    return PandasRun(t1 - t0, t2 - t1, t3 - t2, summary)


async def check_sample(
    settings: Settings,
    namespace: str,
    summary: pd.DataFrame,
    home: dict[str, int],
    sample: list[str],
) -> int:
    """Compare Redis state with the pandas summary for ``sample``; returns mismatches
    (raises with the first few)."""
    store = RedisStore.from_url(settings.redis_url.get_secret_value(), "rfm", namespace)
    bad = []
    try:
        for cid in sample:
            s = await store.get_state(home[cid], cid)
            row = summary.loc[cid]
            want = (int(row.frequency), int(row.monetary), int(row.first_ms), int(row.last_ms))
            got = None if s is None else (s.frequency, s.monetary, s.first_ms, s.last_ms)
            if got != want:
                bad.append((cid, got, want))
    finally:
        await store.close()
    if bad:
        raise AssertionError(
            f"{len(bad)} of {len(sample)} customers differ in {namespace!r} "
            f"(customer, redis, pandas): {bad[:5]}"
        )
    return len(bad)
