"""Live worker throughput vs a no-op faust agent, its cost per event, and 1 vs 2 workers.

    python -m bench --only live     (sizes in bench/__main__.py)

One Tansu broker and one redis-server (started here on free ports), one seeded workload
(``bench.workload``), and in this one run:

1. throughput: the real ``rfm-stream worker`` subprocess vs ``bench.noop_agent`` (the
   same faust configuration, an agent that only counts), alternating, each timed from
   its first batch (the group join excluded) to the last record;
2. cost per event of the worker runs: Redis commands (INFO commandstats deltas from its
   first commit until its outbox is drained) and process CPU time (``/proc``), against
   the no-op agent's CPU; then one more worker run with py-spy attached (not timed);
3. scaling: one vs two workers in one consumer group, each run on a fresh topic:
   workers started, the group settled (``/health`` of each), then the workload produced
   and timed until Redis's committed offsets cover it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench.procs import (
    Proc,
    broker_and_redis,
    fresh_settings,
    spawn,
    start_pyspy,
    stop_pyspy,
    summarize_pyspy,
    wait_owned,
)
from bench.runners import ROOT
from bench.workload import generate, produce
from schemas.settings import Settings
from state.store import RedisStore
from stream.kafka.clients import ensure_topics


@dataclass
class Rate:
    events: int
    seconds: float
    cpu_s: float = 0.0
    join_s: float = 0.0
    peak_rss_mb: float = 0.0  # the worker's, once its outbox was drained

    @property
    def per_s(self) -> float:
        # a smoke-size run can fit in the consumer's first batch: nothing after it is timed
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass
class LiveResults:
    events: int = 0
    customers: int = 0
    refunds: int = 0
    partitions: int = 4
    noop: list[Rate] = field(default_factory=list)
    batched: list[Rate] = field(default_factory=list)  # no-op on the worker's delivery path
    worker: list[Rate] = field(default_factory=list)
    commands: dict[str, int] = field(default_factory=dict)  # of the best worker run
    redis_usec: int = 0
    cost_events: int = 0
    transitions: int = 0
    profile: str = ""
    profile_s: float = 0.0
    scaling: dict[int, list[Rate]] = field(default_factory=dict)
    load: list[tuple[float, float, float]] = field(default_factory=list)
    redis_version: str = ""


async def commandstats(store: RedisStore) -> dict[str, tuple[int, int]]:
    """Per command: (calls, usec) since the last CONFIG RESETSTAT."""
    stats = await store.client.info("commandstats")
    return {k.removeprefix("cmdstat_"): (v["calls"], v["usec"]) for k, v in stats.items()}


async def outbox_len(store: RedisStore, partitions: int) -> int:
    return sum([await store.outbox_size(p) for p in range(partitions)])


async def run_worker(
    settings: Settings,
    ns: str,
    last: dict[int, int],
    logdir: Path,
    res: LiveResults | None,
    spy_out: Path | None = None,
    extra: dict[str, str] | None = None,
    root: Path = ROOT,
) -> Rate:
    """One worker over the whole topic, timed from its first commit to the last offset.

    With ``res``, the Redis commands and CPU from the first commit until the outbox is
    drained are recorded; with ``spy_out``, py-spy samples it over the same span;
    ``extra`` overrides its environment (e.g. ``RFM_RULES``); ``root``: the checkout whose
    code runs (default: this one).
    """
    store = RedisStore.from_url(settings.redis_url.get_secret_value(), "rfm", ns)
    await store.client.config_resetstat()
    t_start = time.perf_counter()
    proc = spawn(settings, ns, f"bench-{ns}", logdir / f"worker-{ns}.log", extra=extra, root=root)
    spy = None
    polls = 0
    try:
        first: tuple[float, int, float, dict[str, tuple[int, int]]] | None = None
        deadline = time.monotonic() + 600
        while True:
            committed = await store.committed_offsets(last)
            polls += 1
            now = time.perf_counter()
            if first is None and any(o >= 0 for o in committed.values()):
                covered = sum(o + 1 for o in committed.values() if o >= 0)
                first = (now, covered, proc.cpu_s(), await commandstats(store))
                polls = 0
                if spy_out is not None:
                    spy = start_pyspy(proc.pid, spy_out)
            if all(committed[p] >= o for p, o in last.items()):
                break
            proc.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker did not catch up: {committed} < {last}")
            await asyncio.sleep(0.02)
        assert first is not None
        t_first, covered, cpu0, stats0 = first
        events = sum(o + 1 for o in last.values()) - covered
        rate = Rate(events, now - t_first, join_s=t_first - t_start)
        while await outbox_len(store, len(last)):  # the relay's work is part of the cost
            proc.check()
            await asyncio.sleep(0.02)
        rate.cpu_s = proc.cpu_s() - cpu0
        rate.peak_rss_mb = proc.peak_rss_mb()
        stats1 = await commandstats(store)
        if spy is not None:
            stop_pyspy(spy)
        if res is not None:
            calls = {c: n - stats0.get(c, (0, 0))[0] for c, (n, _) in stats1.items()}
            calls["hget"] = calls.get("hget", 0) - polls * len(last)  # our own polling
            calls = {c: n for c, n in calls.items() if n > 0 and c not in ("xlen", "info")}
            if not res.worker or rate.per_s >= max(r.per_s for r in res.worker):
                res.commands, res.cost_events = calls, events
                res.redis_usec = sum(
                    stats1[c][1] - stats0.get(c, (0, 0))[1]
                    for c in ("evalsha", "eval", "xrange", "xdel", "hget", "zrangebyscore")
                    if c in stats1
                )
        return rate
    finally:
        if spy is not None and spy.poll() is None:
            stop_pyspy(spy)
        await store.close()
        proc.stop()


async def run_noop(
    settings: Settings, total: int, logdir: Path, tag: str, delivery: str = "agent"
) -> Rate:
    """The no-op consumer over the whole topic (a faust agent, or with ``delivery=
    "batched"`` the worker's delivery path); it reports its own timing on stdout."""
    log = logdir / f"noop-{tag}.log"
    t_start = time.perf_counter()
    proc = spawn(
        settings,
        "unused",
        f"bench-noop-{tag}",
        log,
        module="bench.noop_agent",
        extra={"BENCH_NOOP_TOTAL": str(total), "BENCH_NOOP_DELIVERY": delivery},
    )
    try:
        deadline = time.monotonic() + 600
        while True:
            for line in log.read_text(errors="replace").splitlines():
                if '{"events"' in line:  # faust may prefix terminal escapes
                    d = orjson.loads(line[line.index('{"events"') :])
                    took = time.perf_counter() - t_start
                    return Rate(d["events"], d["seconds"], d["cpu_s"], took - d["seconds"])
            proc.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"no-op agent did not finish:\n{proc.tail()}")
            await asyncio.sleep(0.05)
    finally:
        proc.stop()


async def run_scaling(
    base: Settings, n_workers: int, payloads: list[tuple[bytes, bytes]], logdir: Path, tag: str
) -> Rate:
    """``n_workers`` in one group on a fresh topic: settle, produce everything, time it."""
    settings = base.model_copy(
        update={"purchases_topic": f"{base.purchases_topic}-{tag}", "group_id": f"g-{tag}"}
    )
    await ensure_topics(settings)
    ns = f"s-{tag}"
    procs: list[Proc] = []
    store = RedisStore.from_url(settings.redis_url.get_secret_value(), "rfm", ns)
    try:
        for i in range(n_workers):
            procs.append(
                spawn(settings, ns, f"g-{tag}", logdir / f"scale-{tag}-{i}.log", http=True)
            )
        join_s = await wait_owned(procs, settings.partitions)
        cpu0 = sum(p.cpu_s() for p in procs)
        t0 = time.perf_counter()
        metas = await produce_raw(settings.kafka_bootstrap, settings.purchases_topic, payloads)
        last: dict[int, int] = {}
        for p, o in metas:
            last[p] = max(last.get(p, -1), o)
        deadline = time.monotonic() + 600
        while True:
            committed = await store.committed_offsets(last)
            if all(committed[p] >= o for p, o in last.items()):
                break
            for p in procs:
                p.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{n_workers} workers did not catch up: {committed}")
            await asyncio.sleep(0.02)
        took = time.perf_counter() - t0
        return Rate(len(payloads), took, sum(p.cpu_s() for p in procs) - cpu0, join_s)
    finally:
        await store.close()
        for p in procs:
            p.stop()


async def produce_raw(
    bootstrap: str, topic: str, payloads: Sequence[tuple[bytes, bytes]]
) -> list[tuple[int, int]]:
    """Pre-encoded (key, value) pairs, produced like ``bench.workload.produce``."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024, acks=1
    )
    await producer.start()
    try:
        futs = [await producer.send(topic, v, key=k) for k, v in payloads]
        metas = await asyncio.gather(*futs)
    finally:
        await producer.stop()
    return [(m.partition, m.offset) for m in metas]


async def bench(
    events_n: int,
    customers: int,
    partitions: int,
    seed: int,
    repeats: int,
    scaling_events: int,
    profile: bool = True,
) -> LiveResults:
    with broker_and_redis("live") as (logdir, broker, server):
        settings, sfx = fresh_settings(broker, server, "live", partitions)
        await ensure_topics(settings)
        res = LiveResults(partitions=partitions)
        probe = RedisStore.from_url(settings.redis_url.get_secret_value(), "rfm", "probe")
        res.redis_version = (await probe.client.info("server"))["redis_version"]
        await probe.close()
        events: list[dict[str, Any]] = generate(events_n, customers, seed)
        res.events = len(events)
        res.customers = len({e["customer_id"] for e in events})
        res.refunds = sum(1 for e in events if e.get("kind") == "refund")
        metas = await produce(broker.address, settings.purchases_topic, events)
        last: dict[int, int] = {}
        for p, o in metas:
            last[p] = max(last.get(p, -1), o)
        res.load.append(os.getloadavg())
        for r in range(repeats):
            steps = ("noop", "batched", "worker")
            for step in steps if r % 2 == 0 else steps[::-1]:
                if step == "noop":
                    rate = await run_noop(settings, res.events, logdir, f"{sfx}-{r}")
                    res.noop.append(rate)
                elif step == "batched":
                    tag = f"{sfx}-b{r}"
                    rate = await run_noop(settings, res.events, logdir, tag, "batched")
                    res.batched.append(rate)
                else:
                    rate = await run_worker(settings, f"w{r}-{sfx}", last, logdir, res)
                    res.worker.append(rate)
                print(
                    f"{step}: {rate.events:,} events in {rate.seconds:.2f} s "
                    f"({rate.per_s:,.0f}/s), CPU {rate.cpu_s:.2f} s, join {rate.join_s:.1f} s",
                    flush=True,
                )
        if profile:
            spy_out = logdir / "pyspy.txt"
            rate = await run_worker(settings, f"prof-{sfx}", last, logdir, None, spy_out)
            res.profile_s = rate.seconds
            res.profile = summarize_pyspy(spy_out) if spy_out.exists() else "(py-spy unavailable)"
            print(f"worker under py-spy: {rate.per_s:,.0f}/s", flush=True)
        payloads = [(e["customer_id"].encode(), orjson.dumps(e)) for e in events[:scaling_events]]
        del events
        for r in range(repeats):
            for n in (1, 2) if r % 2 == 0 else (2, 1):
                rate = await run_scaling(settings, n, payloads, logdir, f"{sfx}-n{n}r{r}")
                res.scaling.setdefault(n, []).append(rate)
                print(
                    f"scaling, {n} worker(s): {rate.per_s:,.0f} events/s "
                    f"(CPU {rate.cpu_s:.1f} s, settled in {rate.join_s:.1f} s)",
                    flush=True,
                )
        res.load.append(os.getloadavg())
        return res
