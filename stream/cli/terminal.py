"""Terminal views for ``rfm-stream inspect`` / ``segments`` / ``report``, and how they
open a namespace read-only (the same :class:`~stream.api.lookup.Lookup` the API uses)."""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import AsyncIterator
from typing import Any

from schemas.settings import Settings
from segments.cut_points import CutPoints
from segments.model import NONE
from segments.rules import build_engine
from state.keys import Keys
from state.layout import FiguresNotKept
from state.store import RedisStore
from stream.api.lookup import Lookup
from stream.api.winback import winback_all
from stream.apply.clock import WallClock
from stream.apply.encode import iso
from stream.apply.tallies import HOUR_MS
from stream.kafka.clients import topic_partitions
from stream.report.page import render_report

__all__ = ["build_report", "open_lookup", "pad", "render_customer", "render_segments"]


def pad(text: str, width: int) -> str:
    """Left-justify by terminal columns (CJK characters take two)."""
    cols = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(0, width - cols)


@contextlib.asynccontextmanager
async def open_lookup(settings: Settings) -> AsyncIterator[Lookup]:
    """A Lookup over the namespace serving ``RFM_NAMESPACE``, at its current cut points."""
    store = RedisStore.from_settings(settings)
    try:
        await store.ping()
        store.keys = Keys(settings.key_prefix, await store.serving(settings.namespace))
        doc = await store.cuts()
        engine = build_engine(settings, cuts=CutPoints.from_json(doc) if doc else None)
        n = await topic_partitions(settings, timeout_s=5) or settings.partitions
        yield Lookup(settings, store, lambda: engine, lambda: n, WallClock().now_ms)
    finally:
        await store.close()


def render_customer(c: dict[str, Any]) -> str:
    out = [
        f"customer {c['customer_id']}  (partition {c['partition']}, as of {c['as_of']})",
        f"  frequency {c['frequency']} · monetary {c['monetary']} {c['currency']} · "
        f"first {c['first_purchase_at'] or '-'} · last {c['last_purchase_at'] or '-'} · "
        f"recency {c['recency_days'] if c['recency_days'] is not None else '-'} days",
        "",
        f"  {pad('scheme', 10)}{pad('segment', 20)}{pad('label', 26)}{pad('scores', 14)}cut",
    ]
    for name, s in c["segments"].items():
        scores = " ".join(f"{a}{v}" for a, v in s["scores"].items())
        cut = "-" if s["cut_version"] is None else f"v{s['cut_version']}"
        out.append(
            f"  {pad(name, 10)}{pad(s['segment'], 20)}{pad(s['label'], 26)}{pad(scores, 14)}{cut}"
        )
    out.append("")
    out.append(f"  next due: {c['next_due_at'] or 'never (nothing changes by time alone)'}")
    if c["history"]:
        out.append("  latest transitions (newest first):")
        for h in c["history"]:
            out.append(
                f"    {h['effective_at']}  {pad(h['scheme'], 8)} {h['from_segment']} → "
                f"{h['to_segment']}  [{h['cause']}]"
            )
    return "\n".join(out)


def render_segments(body: dict[str, Any]) -> str:
    out = []
    for scheme, v in body["schemes"].items():
        total = v["customers"]
        out.append(f"{scheme}  ({total:,} customers)")
        for row in v["segments"]:
            share = f"{100 * row['customers'] / total:5.1f} %" if total else "    - "
            name = pad(row["segment"], 20) + pad(row["label"], 28)
            out.append(f"  {name}{row['customers']:>10,}  {share}")
        out.append("")
    return "\n".join(out).rstrip()


async def build_report(lookup: Lookup, since: str, until: str | None, now_ms: int) -> str:
    """The flow report's HTML over [since, until): flows from the hourly tallies, sizes at
    ``until`` from the sizes now minus what flowed after it (no scan of customers)."""
    since_ms, until_ms, flows = await lookup.flows(since, until)
    counts = await lookup.segments()
    sizes = {
        (scheme, row["segment"]): row["customers"]
        for scheme, v in counts["schemes"].items()
        for row in v["segments"]
    }
    if until_ms < now_ms:  # back out what happened between until and now
        _, _, later = await lookup.flows(iso(until_ms), iso(now_ms + HOUR_MS))
        for (scheme, frm, to, start), n in later.items():
            if start < until_ms:
                continue
            if frm != NONE:
                sizes[(scheme, frm)] = sizes.get((scheme, frm), 0) + n
            if to != NONE:
                sizes[(scheme, to)] = sizes.get((scheme, to), 0) - n
    labels = {s.name: dict(s.labels) for s in lookup.engine.schemes}
    try:  # the running figures, where the namespace kept them from its start
        winback, values = await winback_all(lookup, since), await lookup.segment_values()
    except FiguresNotKept:  # a namespace from before them: the flows and sizes still answer
        winback, values = [], None
    return render_report(
        title=f"rfm-stream · segment flows · {lookup.store.keys.namespace}",
        since_ms=since_ms,
        until_ms=until_ms,
        bucket_ms=HOUR_MS,
        flows=flows,
        sizes_now=sizes,
        labels=labels,
        generated_at_ms=now_ms,
        winback=winback,
        values=values,
    )
