"""The live worker's batch size (``RFM_BATCH_MAX``): throughput, commit-script time, memory.

    python -m bench --only batch     (sizes in bench/__main__.py)

Why: a worker that is behind applies full batches (``stream.live.delivery``). A bigger one
decodes and encodes a customer once for all of their events in it and sends two scripts
per partition for more events, so it costs less CPU per event; but each partition's commit
script then runs longer, and Redis serves no other client while a script runs, and the
worker holds more in memory. The default (``Settings.batch_max``) is chosen from this
figure: all three, for the default schemes and for rfm8 alone, in one run.

One Tansu broker and one redis-server started here, one seeded workload (``bench.workload``,
as the peers figure), and every worker run a real ``rfm-stream worker`` over the whole topic
into a fresh namespace (``bench_live.run_worker``: timed from its first commit to the last
offset, its outbox drained). Script times come from Redis's SLOWLOG (every ``EVALSHA`` over
1 ms: the loads and commits of big batches); peak memory is the worker's ``VmHWM``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.bench_live import Rate, run_worker
from bench.peer_quix import RULES
from bench.procs import broker_and_redis, fresh_settings
from bench.report import div, section_head
from bench.workload import generate, produce
from schemas.settings import Settings, load_settings
from state.store import RedisStore
from stream.kafka.clients import ensure_topics

__all__ = ["SECTION", "BatchResults", "bench", "section"]

SECTION = "## Live worker batch size: throughput, commit-script time and memory"

SETS = {"rfm": None, "rfm8": str(RULES)}
"""Scheme sets: the default rules (the four RFM schemes), rfm8 alone (``RFM_RULES``)."""

_SLOW_US = 1000


@dataclass
class Run:
    rate: Rate
    scripts_ms: list[float]  # every EVALSHA over 1 ms during the run, in ms


@dataclass
class BatchResults:
    events: int = 0
    customers: int = 0
    partitions: int = 4
    default: int = 0  # Settings.batch_max
    runs: dict[tuple[str, int], list[Run]] = field(default_factory=dict)
    load: list[tuple[float, float, float]] = field(default_factory=list)


async def _slow_scripts(store: RedisStore) -> list[float]:
    """EVALSHA durations (ms) in the SLOWLOG since the last reset."""
    out = []
    for entry in await store.client.slowlog_get(100_000):
        cmd = entry["command"]
        text = cmd.decode(errors="replace") if isinstance(cmd, bytes) else str(cmd)
        if text.split(" ", 1)[0].upper() == "EVALSHA":
            out.append(entry["duration"] / 1000)
    return out


async def _one(
    settings: Settings, ns: str, last: dict[int, int], logdir: Path, env: dict[str, str]
) -> Run:
    store = RedisStore.from_url(settings.redis_url.get_secret_value(), "rfm", "probe")
    try:
        await store.client.config_set("slowlog-max-len", 100_000)
        await store.client.config_set("slowlog-log-slower-than", _SLOW_US)
        await store.client.slowlog_reset()
        rate = await run_worker(settings, ns, last, logdir, None, extra=env)
        return Run(rate, await _slow_scripts(store))
    finally:
        await store.close()


async def bench(
    events_n: int, customers: int, sizes: Sequence[int], repeats: int, partitions: int = 4
) -> BatchResults:
    with broker_and_redis("batch") as (logdir, broker, server):
        settings, sfx = fresh_settings(broker, server, "batch", partitions)
        await ensure_topics(settings)
        res = BatchResults(partitions=partitions, default=load_settings().batch_max)
        events = generate(events_n, customers, 7)
        res.events = len(events)
        res.customers = len({e["customer_id"] for e in events})
        last: dict[int, int] = {}
        for p, o in await produce(broker.address, settings.purchases_topic, events):
            last[p] = max(last.get(p, -1), o)
        del events
        res.load.append(os.getloadavg())
        steps = [(name, size) for name in SETS for size in sizes]
        for r in range(repeats):
            for name, size in steps if r % 2 == 0 else steps[::-1]:
                env = {"RFM_BATCH_MAX": str(size)}
                if SETS[name] is not None:
                    env["RFM_RULES"] = str(SETS[name])
                run = await _one(settings, f"b{r}{name}{size}-{sfx}", last, logdir, env)
                res.runs.setdefault((name, size), []).append(run)
                print(
                    f"{name} @ {size}: {run.rate.per_s:,.0f}/s, CPU {run.rate.cpu_s:.2f} s, "
                    f"peak {run.rate.peak_rss_mb:.0f} MB, scripts max "
                    f"{max(run.scripts_ms, default=0):.0f} ms",
                    flush=True,
                )
        res.load.append(os.getloadavg())
        return res


def _p90(xs: list[float]) -> float:
    s = sorted(xs)
    return s[int(0.9 * (len(s) - 1))] if s else 0.0


def section(res: BatchResults, command: str) -> str:
    sizes = sorted({size for _, size in res.runs})
    base = min(sizes, default=0)
    rows = []
    for name in SETS:
        best0 = max((r.rate.per_s for r in res.runs.get((name, base), [])), default=0.0)
        for size in sizes:
            runs = res.runs.get((name, size), [])
            best = max(runs, key=lambda r: r.rate.per_s)
            cpu_us = div(best.rate.cpu_s, best.rate.events) * 1e6
            scripts = [ms for r in runs for ms in r.scripts_ms]
            mark = " (default)" if size == res.default else ""
            rows.append(
                f"| {name} | {size:,}{mark} | {best.rate.per_s:,.0f} "
                f"| {div(best.rate.per_s, best0):.2f}× | {cpu_us:.1f} "
                f"| {max(r.rate.peak_rss_mb for r in runs):.0f} "
                f"| {_p90(scripts):.0f} / {max(scripts, default=0):.0f} |"
            )
    every = "\n".join(
        f"- {name} @ {size:,}: "
        + ", ".join(f"{r.rate.per_s:,.0f}" for r in res.runs[(name, size)])
        + " events/s"
        for name in SETS
        for size in sizes
    )
    head = section_head(SECTION, command, res.load)
    return f"""{head}
Workload: {res.events:,} events for {res.customers:,} customers (seed 7, as the peers
figure), {res.partitions} partitions, produced once; every run a real `rfm-stream worker`
(`RFM_DECAY_TIMER=false`) over the whole topic into a fresh namespace, timed from its first
commit seen in Redis to Redis's committed offsets covering the topic (the records of that
first batch not counted, as every worker figure), its outbox then drained. "rfm": the
default rules (the four RFM schemes); "rfm8": `RFM_RULES=tests/rules/rfm8.toml`. Runs
alternate (every set and size, then the reverse). Each row: the best run; "vs
{base:,}": its rate over the best run of the same set at {base:,}; CPU per event from
`/proc` over the same span; peak MB: the worker's `VmHWM` (highest of the runs);
scripts: Redis's SLOWLOG, every `EVALSHA` over 1 ms in all runs of the row (load and
commit scripts of one partition's batch: while one runs, Redis answers no other client).

| set | `RFM_BATCH_MAX` | events/s | vs {base:,} | CPU µs/event | peak MB | scripts p90 / max ms |
|---|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

All runs:

{every}
"""
