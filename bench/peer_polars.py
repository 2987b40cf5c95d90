"""The nightly-batch peers of issue #21: the RFM job on polars and on pandas, in memory.

What a team that does not stream writes instead: a DataFrame from the day's events, R/F/M
per customer in a group-by, and the 2×2×2 grid of :class:`bench.peer_quix.Grid` applied
to it (one segment per customer). Both take the events as the list of dicts the other
figures produce (``bench.workload.generate``) and are timed from that list to the segment
of every customer, DataFrame construction included (that is where a batch job spends most
of its time on data like this), with the construction also timed on its own.

Definitions, the engine's (and ``bench.baselines.pandas_summary``'s): F counts orders not
fully refunded, M is purchases minus refunds, R is the last purchase time. A batch has no
event to measure recency against, so both measure it against the latest purchase time
in the data (the batch's "as of"); the streaming peers measure it against each event's.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from bench.baselines import pandas_summary
from bench.peer_quix import Grid

__all__ = ["BatchRun", "pandas_rfm8", "polars_rfm8"]

SCHEMA = {
    "customer_id": pl.String,
    "order_id": pl.String,
    "occurred_at": pl.String,
    "amount": pl.String,
    "kind": pl.String,
    "refund_of": pl.String,
}


@dataclass
class BatchRun:
    events: int
    construct_s: float  # list of dicts -> DataFrame
    seconds: float  # list of dicts -> every customer's segment (construction included)
    segments: dict[str, str]  # customer -> segment, to check the two peers agree

    @property
    def per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def polars_rfm8(events: list[dict[str, Any]], grid: Grid) -> BatchRun:
    """The job in polars' lazy API (one query plan, run on every core polars may use)."""
    gc.collect()
    t0 = time.perf_counter()
    df = pl.from_dicts(events, schema=SCHEMA)  # the schema: refund fields are rare
    t1 = time.perf_counter()
    refund = pl.col("kind") == "refund"
    events_lf = df.lazy().with_columns(
        cents=(pl.col("amount").cast(pl.Float64) * 100).round().cast(pl.Int64),
        ms=pl.col("occurred_at").str.to_datetime(time_zone="UTC").dt.epoch("ms"),
        refund=refund.fill_null(False),
        order=pl.coalesce(pl.col("refund_of"), pl.col("order_id")),
    )
    per_order = events_lf.group_by("customer_id", "order").agg(
        held=pl.when(~pl.col("refund")).then(pl.col("cents")).otherwise(-pl.col("cents")).sum(),
        bought=(~pl.col("refund")).any(),
        last_ms=pl.col("ms").filter(~pl.col("refund")).max(),
    )
    per_customer = per_order.group_by("customer_id").agg(
        f=(pl.col("bought") & (pl.col("held") > 0)).sum(),
        m=pl.col("held").sum(),
        last_ms=pl.col("last_ms").max(),
    )
    asof = pl.col("last_ms").max()
    cell = pl.concat_str(
        _score(asof - pl.col("last_ms") < grid.recency_ms),
        _score(pl.col("f") >= grid.frequency_cut),
        _score(pl.col("m") >= grid.monetary_cut_cents),
    )
    out = per_customer.select(
        "customer_id", segment=cell.replace_strict(grid.cells, return_dtype=pl.String)
    ).collect()
    t2 = time.perf_counter()
    segments = dict(zip(out["customer_id"].to_list(), out["segment"].to_list(), strict=True))
    return BatchRun(len(events), t1 - t0, t2 - t0, segments)


def _score(high: pl.Expr) -> pl.Expr:
    return pl.when(high).then(pl.lit("2")).otherwise(pl.lit("1"))


def pandas_rfm8(events: list[dict[str, Any]], grid: Grid) -> BatchRun:
    """``bench.baselines.pandas_summary`` (the backfill figure's pandas, R/F/M per
    customer) and the grid on its columns with numpy."""
    gc.collect()
    t0 = time.perf_counter()
    run = pandas_summary(events)
    s = run.summary
    last = s["last_ms"].to_numpy()
    r = np.where(last.max() - last < grid.recency_ms, "2", "1")
    f = np.where(s["frequency"].to_numpy() >= grid.frequency_cut, "2", "1")
    # pandas_summary's money is in 1/10,000 units, like the engine
    m = np.where(s["monetary"].to_numpy() >= grid.monetary_cut_cents * 100, "2", "1")
    cells = pd.Series(np.char.add(np.char.add(r, f), m), index=s.index)
    segment = cells.map(grid.cells)
    t1 = time.perf_counter()
    return BatchRun(len(events), run.construct_s, t1 - t0, segment.to_dict())
