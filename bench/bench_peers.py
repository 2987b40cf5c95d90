"""rfm-stream against what a team would otherwise write (issue #21), on one topic, in one run.

    python -m bench --only peers     (sizes in bench/__main__.py)

One Tansu broker and one redis-server (started here on free ports), one seeded workload
(``bench.workload``: the same generator and producer as the other figures) on one topic,
and in this one run, alternating the order of the streaming runs between repeats:

a. the quixstreams app (:mod:`bench.peer_quix`): RocksDB state, R/F/M and the rfm8 grid,
   a transition on every segment change; a subprocess in its own consumer group, timed
   from its first record to its group's offsets committed on the broker;
b. ``rfm-stream worker`` with only the rfm8 scheme (``RFM_RULES=tests/rules/rfm8.toml``),
   timed like ``bench_live`` (:func:`bench.bench_live.run_worker`: from its first commit
   seen in Redis to Redis's committed offsets covering the topic);
c. the same worker with the default rules (the four RFM schemes);
d. ``backfill_topic`` in process (:func:`bench.runners.backfill_in_process`, its default
   processes) with the shipped rules, and again with only rfm8;
e. plain aiokafka: read + ``orjson.loads`` of every record (:func:`bench.baselines.plain_aiokafka`);
f. polars and g. pandas: the same job as a batch over the events in memory
   (:mod:`bench.peer_polars`), after the streaming runs, their segments checked equal.

Every figure is reported as a ratio to the quixstreams app and to plain aiokafka.
"""

from __future__ import annotations

import gc
import os
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.baselines import plain_aiokafka
from bench.bench_live import Rate, run_worker
from bench.peer_polars import BatchRun, pandas_rfm8, polars_rfm8
from bench.peer_quix import RULES, Grid, QuixRun, quix_version, run_quix
from bench.procs import broker_and_redis, fresh_settings
from bench.runners import BackfillRun, backfill_in_process
from bench.workload import generate, produce
from schemas.settings import Settings
from state.store import RedisStore
from stream.kafka.clients import ensure_topics

__all__ = ["PeersResults", "bench"]


@dataclass
class PeersResults:
    events: int = 0
    customers: int = 0
    refunds: int = 0
    partitions: int = 4
    quix: list[QuixRun] = field(default_factory=list)
    worker_rfm8: list[Rate] = field(default_factory=list)
    worker_all: list[Rate] = field(default_factory=list)
    backfill_all: list[BackfillRun] = field(default_factory=list)
    backfill_rfm8: list[BackfillRun] = field(default_factory=list)
    plain_s: list[float] = field(default_factory=list)
    polars: list[BatchRun] = field(default_factory=list)
    pandas: list[BatchRun] = field(default_factory=list)
    segments_checked: int = 0
    load: list[tuple[float, float, float]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)


async def create_purchases(settings: Settings) -> None:
    """The purchases topic with an explicit ``retention.ms`` (infinite, as Tansu keeps
    everything anyway): Tansu's DescribeConfigs answers only the configs a topic was
    created with, and quixstreams derives its changelog topic's retention from its input's."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        topic = NewTopic(
            settings.purchases_topic,
            num_partitions=settings.partitions,
            replication_factor=1,
            topic_configs={"retention.ms": "-1"},
        )
        await admin.create_topics([topic])
    finally:
        await admin.close()
    await ensure_topics(settings)  # the transitions and DLQ topics


async def bench(
    events_n: int, customers: int, partitions: int, seed: int, repeats: int
) -> PeersResults:
    with broker_and_redis("peers") as (logdir, broker, server):
        settings, sfx = fresh_settings(broker, server, "peers", partitions)
        await create_purchases(settings)
        res = PeersResults(partitions=partitions)
        res.versions = {p: version(p) for p in ("polars", "pandas", "aiokafka")}
        res.versions["quixstreams"] = quix_version()  # in its own venv (peer_python)
        probe = RedisStore.from_url(settings.redis_url.get_secret_value(), "rfm", "probe")
        res.versions["redis-server"] = (await probe.client.info("server"))["redis_version"]
        await probe.close()
        events = generate(events_n, customers, seed)
        res.events = len(events)
        res.customers = len({e["customer_id"] for e in events})
        res.refunds = sum(1 for e in events if e.get("kind") == "refund")
        metas = await produce(broker.address, settings.purchases_topic, events)
        last: dict[int, int] = {}
        for p, o in metas:
            last[p] = max(last.get(p, -1), o)
        # the event dicts would slow every collection of the in-process runs: regenerated
        # (same seed) for the batch peers at the end, as bench_backfill does
        del events, metas
        gc.collect()
        res.load.append(os.getloadavg())
        await _streaming(settings, res, last, logdir, sfx, repeats)
        events = generate(events_n, customers, seed)
        grid = Grid.from_rules(RULES)
        for r in range(repeats):
            for step in ("polars", "pandas") if r % 2 == 0 else ("pandas", "polars"):
                run = (polars_rfm8 if step == "polars" else pandas_rfm8)(events, grid)
                (res.polars if step == "polars" else res.pandas).append(run)
                print(f"{step}: {run.per_s:,.0f} events/s ({run.seconds:.2f} s)", flush=True)
        if res.polars[0].segments != res.pandas[0].segments:
            raise AssertionError("polars and pandas disagree on the segments")
        res.segments_checked = len(res.polars[0].segments)
        res.load.append(os.getloadavg())
        return res


async def _streaming(
    settings: Settings,
    res: PeersResults,
    last: dict[int, int],
    logdir: Path,
    sfx: str,
    repeats: int,
) -> None:
    """The streaming runs, alternating their order between repeats."""
    total = sum(o + 1 for o in last.values())
    rfm8_only = {"RFM_RULES": str(RULES)}
    rfm8_settings = settings.model_copy(update={"rules": str(RULES)})
    steps = ("quix", "rfm8", "all", "backfill", "backfill-rfm8", "plain")
    for r in range(repeats):
        for step in steps if r % 2 == 0 else steps[::-1]:
            tag = f"{r}-{sfx}"
            t0 = time.perf_counter()
            if step == "quix":
                q = await run_quix(
                    settings.kafka_bootstrap,
                    settings.purchases_topic,
                    f"quix-transitions-{tag}",
                    last,
                    logdir,
                    tag,
                )
                res.quix.append(q)
                line = (
                    f"{q.events:,} in {q.seconds:.2f} s ({q.events / q.seconds:,.0f}/s), "
                    f"{q.transitions:,} transitions, join {q.join_s:.1f} s"
                )
            elif step in ("rfm8", "all"):
                extra = rfm8_only if step == "rfm8" else None
                w = await run_worker(settings, f"w{step}{tag}", last, logdir, None, extra=extra)
                (res.worker_rfm8 if step == "rfm8" else res.worker_all).append(w)
                line = f"{w.events:,} in {w.seconds:.2f} s ({w.per_s:,.0f}/s)"
                line += f", join {w.join_s:.1f} s"
            elif step.startswith("backfill"):
                s = rfm8_settings if step == "backfill-rfm8" else settings
                b = await backfill_in_process(s, f"{step}{tag}")
                if b.report.events != total or b.report.dead_letters:
                    raise AssertionError(f"{step} applied {b.report.events}/{total}")
                (res.backfill_rfm8 if step == "backfill-rfm8" else res.backfill_all).append(b)
                line = f"{b.report.events:,} in {b.wall_s:.2f} s ({total / b.wall_s:,.0f}/s)"
            else:
                took = await plain_aiokafka(
                    settings.kafka_bootstrap, settings.purchases_topic, total, 10_000
                )
                res.plain_s.append(took)
                line = f"{total:,} in {took:.2f} s ({total / took:,.0f}/s)"
            print(f"{step}: {line} [{time.perf_counter() - t0:.0f} s]", flush=True)
