"""Event → transition latency under paced load, and decay timeliness, of the live worker.

    python -m bench --only latency     (sizes in bench/__main__.py)

Starts its own Tansu broker and redis-server. All clocks are this machine's wall clock
(``time.time``), read by this process for sending and receiving.

- latency: a paced producer (a tick every 5 ms, sending what the rate owes so far) sends
  first purchases of new customers, ``occurred_at`` = now, so each is sure to cause one
  ``first_purchase`` transition; a group-less aiokafka consumer on the transitions topic
  matches them by customer id. Baseline in the same run: the broker alone, the same
  pacing produced to a fresh topic and consumed by the same consumer code (by event id).
- decay timeliness (bench.decay_timeliness): ``decay`` customer states loaded with the
  real ``RedisStore.commit`` (due times = the engine's ``next_due``, spread evenly over
  ``spread_s`` seconds that start ``lead_s`` seconds after loading), then a live worker
  with its decay timer on; lateness = when the ``recency_decay`` transition was read −
  its ``effective_at`` (the due time).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from bench.decay_timeliness import decay_run
from bench.observe import Lat, LatencyResults, Observer, iso_ms
from bench.procs import Proc, broker_and_redis, fresh_settings, spawn, wait_owned
from bench.workload import generate, produce
from schemas.settings import Settings
from segments.rules import build_engine
from state.store import RedisStore
from stream.apply.calibrate import refresh
from stream.demo.embedded import start_tansu
from stream.kafka.clients import ensure_topics

FAUST_FETCH_WAIT_MS = 1500  # what faust's aiokafka driver hard-codes for its consumer
HISTORY_GAP = timedelta(minutes=1)
"""The established base's history ends this long before the paced runs start."""


async def paced(
    bootstrap: str, topic: str, rate: int, seconds: float, tag: str
) -> dict[str, float]:
    """First purchases of new customers at ``rate``/s; returns customer -> sent (wall ms)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, enable_idempotence=False)
    await producer.start()
    sent: dict[str, float] = {}
    total = int(rate * seconds)
    futs = []
    try:
        t0 = time.perf_counter()
        i = 0
        while i < total:
            owed = min(total, int((time.perf_counter() - t0) * rate) + 1)
            while i < owed:
                cid = f"{tag}-{i:07d}"
                now = time.time()
                ev = {
                    "event_id": f"{cid}-e0",
                    "customer_id": cid,
                    "order_id": f"{cid}-o0",
                    "occurred_at": datetime.fromtimestamp(now, UTC).isoformat(),
                    "amount": "1200.00",
                    "currency": "CNY",
                    "channel": "pos",
                }
                sent[cid] = now * 1000
                futs.append(await producer.send(topic, orjson.dumps(ev), key=cid.encode()))
                i += 1
            await asyncio.sleep(0.005)
        await asyncio.gather(*futs)
    finally:
        await producer.stop()
    return sent


async def broker_after_batches(
    base: Settings, sfx: str, per_partition: int, seconds: float, broker_pid: int
) -> Lat:
    """The broker alone at 1,000/s on a fresh topic that already holds ``per_partition``
    one-record batches in each partition (what a paced run's small produce requests leave
    behind: ~2,000 per partition at 1,000/s for 10 s, from the producer and again from the
    relay); and the broker's CPU meanwhile."""
    topic = f"debt{per_partition}-{sfx}"
    await ensure_topics(base.model_copy(update={"purchases_topic": topic}))
    producer = AIOKafkaProducer(bootstrap_servers=base.kafka_bootstrap, acks=1)
    await producer.start()
    try:
        filler = orjson.dumps({"customer_id": "filler", "event_id": "filler"})
        futs = []
        for i in range(per_partition * base.partitions):
            batch = producer.create_batch()
            batch.append(key=None, value=filler, timestamp=None)
            futs.append(await producer.send_batch(batch, topic, partition=i % base.partitions))
        await asyncio.gather(*futs)
    finally:
        await producer.stop()
    return await measure(
        base.kafka_bootstrap,
        topic,
        topic,
        "event_id",
        base.partitions,
        1000,
        seconds,
        broker_pid=broker_pid,
    )


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    bootstrap: str,
    src: str,
    dst: str,
    key: str,
    partitions: int,
    rate: int,
    seconds: float,
    fetch_wait_ms: int = 20,
    broker_pid: int | None = None,
) -> Lat:
    """Produce paced to ``src``, observe ``dst`` (matching on ``key``); latencies in ms,
    and with ``broker_pid`` the broker's CPU seconds meanwhile."""
    cpu0 = cpu_seconds(broker_pid) if broker_pid else 0.0
    tag = f"r{rate}-{uuid.uuid4().hex[:6]}"
    obs = Observer(
        bootstrap,
        dst,
        partitions,
        key,
        lambda d: d["customer_id"].startswith(tag + "-"),
        fetch_wait_ms,
    )
    await obs.start()
    try:
        sent = await paced(bootstrap, src, rate, seconds, tag)
        await obs.wait_for(len(sent), timeout_s=30)
    finally:
        await obs.stop()
    lat = Lat(rate, len(sent))
    if broker_pid:
        lat.broker_cpu_s = cpu_seconds(broker_pid) - cpu0
    for cid, t in sent.items():
        got = obs.seen.get(cid if key == "customer_id" else f"{cid}-e0")
        if got is not None:
            lat.ms.append(got[0] - t)
            if "emitted_at" in got[1]:
                emitted = iso_ms(got[1]["emitted_at"])
                lat.before_emit.append(emitted - t)
                lat.after_emit.append(got[0] - emitted)
    return lat


async def settle(
    store: RedisStore,
    last: dict[int, int],
    proc: Proc,
    cut: int | None = None,
    quiet_s: float = 3.0,
) -> float:
    """Wait until the worker applied everything up to ``last``, swept every partition under
    its latest cut points (with ``cut``: that version) and published its outboxes,
    unchanged for ``quiet_s``; returns the seconds waited (catch-up, not measured)."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    seen: list[str | None] = []
    quiet_since: float | None = None
    while loop.time() - t0 < 600:
        proc.check()
        committed = await store.committed_offsets(last)
        sweeps = [await store.meta_field(p, "sweep") for p in sorted(last)]
        outbox = sum([await store.outbox_size(p) for p in sorted(last)])
        targets = [(f or "").partition("|")[0] for f in sweeps]
        done = (
            all(committed[p] >= o for p, o in last.items())
            and all(f is not None and f.endswith("|done") for f in sweeps)
            and (cut is None or all(t.endswith(f"/{cut}") for t in targets))
            and outbox == 0
        )
        if done and sweeps == seen:
            quiet_since = quiet_since or loop.time()
            if loop.time() - quiet_since >= quiet_s:
                return loop.time() - t0
        else:
            quiet_since = None
        seen = sweeps
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the worker did not settle: offsets {committed}, sweeps {seen}")


async def worker_runs(
    settings: Settings,
    rates: list[int],
    seconds: float,
    logdir: Path,
    tag: str,
    last: dict[int, int],
    res: LatencyResults | None,
    broker_pid: int | None = None,
) -> list[Lat]:
    """A live worker (decay timer on) on ``settings``' namespace: once it has applied the
    history up to ``last`` (with ``res``: how long that took is recorded), a warm-up, then
    one paced run per rate."""
    proc = spawn(
        settings,
        settings.namespace,
        f"bench-{tag}-{uuid.uuid4().hex[:6]}",
        logdir / f"worker-{tag}.log",
        http=True,
        extra={"RFM_DECAY_TIMER": "true"},
    )
    out: list[Lat] = []
    store = RedisStore.from_url(
        settings.redis_url.get_secret_value(), settings.key_prefix, settings.namespace
    )
    try:
        await wait_owned([proc], settings.partitions)
        if last:
            waited = await settle(store, last, proc)
            # the base ranked as a whole, as the hourly refresh keeps it: the runs must not
            # straddle the recalibration that the history's last doubling would bring
            now = int(time.time() * 1000)
            new = await refresh(store, build_engine(settings), sorted(last), now, None, True)
            waited += await settle(store, last, proc, new.version if new else None)
            if res is not None:
                res.base_settle_s = waited
        boot, src, dst = (
            settings.kafka_bootstrap,
            settings.purchases_topic,
            settings.transitions_topic,
        )
        await measure(boot, src, dst, "customer_id", settings.partitions, 50, 1.0)  # warm-up
        for rate in rates:
            cpu0 = cpu_seconds(proc.pid)
            lat = await measure(
                boot, src, dst, "customer_id", settings.partitions, rate, seconds, 20, broker_pid
            )
            lat.cpu_s = cpu_seconds(proc.pid) - cpu0
            out.append(lat)
            print(f"worker ({tag}), {lat.line()}", flush=True)
            proc.check()
        if res is not None:  # the first rate once more, on the topics the runs above filled
            cpu0 = cpu_seconds(proc.pid)
            lat = await measure(
                boot,
                src,
                dst,
                "customer_id",
                settings.partitions,
                rates[0],
                seconds,
                20,
                broker_pid,
            )
            lat.cpu_s = cpu_seconds(proc.pid) - cpu0
            res.worker_again = lat
            print(f"worker ({tag}) again, {lat.line()}", flush=True)
    finally:
        await store.close()
        proc.stop()
    return out


async def bench(
    rates: list[int],
    seconds: float,
    decay: int,
    lead_s: float,
    spread_s: float,
    partitions: int,
    base_customers: int = 40_000,
    base_events: int = 120_000,
    batch_debts: tuple[int, ...] = (2_000, 6_000),
) -> LatencyResults:
    res = LatencyResults(partitions=partitions, seconds=seconds)
    with broker_and_redis("latency") as (logdir, broker, server):
        settings, sfx = fresh_settings(broker, server, "lat", partitions)
        await ensure_topics(settings)
        base = settings.model_copy(update={"purchases_topic": f"baseline-{sfx}"})
        await ensure_topics(base)
        res.load.append(os.getloadavg())
        boot = broker.address
        for rate in rates:
            lat = await measure(
                boot,
                base.purchases_topic,
                base.purchases_topic,
                "event_id",
                partitions,
                rate,
                seconds,
                broker_pid=broker.proc.pid,
            )
            res.broker.append(lat)
            print(f"broker alone, {lat.line()}", flush=True)
            lat = await measure(
                boot,
                base.purchases_topic,
                base.purchases_topic,
                "event_id",
                partitions,
                rate,
                seconds,
                FAUST_FETCH_WAIT_MS,
            )
            res.broker_faust_wait.append(lat)
            print(f"broker alone, consumer fetch_max_wait_ms=1500, {lat.line()}", flush=True)
        for debt in batch_debts:
            lat = await broker_after_batches(base, sfx, debt, seconds, broker.proc.pid)
            res.broker_batches.append((debt, lat))
            print(f"broker alone, {debt:,} batches per partition before, {lat.line()}", flush=True)
        # the headline: a worker serving an established base (a year and a half of
        # history, applied by the worker itself), as a deployment runs nearly always
        history = generate(base_events, base_customers, 7, end=datetime.now(UTC) - HISTORY_GAP)
        res.base_customers, res.base_events = base_customers, len(history)
        metas = await produce(boot, settings.purchases_topic, history)
        del history
        last: dict[int, int] = {}
        for part, off in metas:
            last[part] = max(last.get(part, -1), off)
        res.worker = await worker_runs(
            settings, rates, seconds, logdir, "base", last, res, broker.proc.pid
        )
        # cold start: a namespace with no customers yet, on a broker of its own
        fresh = start_tansu(log_path=logdir / "tansu-cold.log")
        try:
            cold = settings.model_copy(
                update={"kafka_bootstrap": fresh.address, "namespace": f"cold-{sfx}"}
            )
            await ensure_topics(cold)
            res.cold = await worker_runs(
                cold, rates, seconds, logdir, "cold", {}, None, fresh.proc.pid
            )
        finally:
            fresh.stop()
        if decay:
            # a broker of its own: after the latency runs' ~300k records this in-memory
            # broker answered every read several times slower (decay p99 2.8-3.2 s there,
            # 0.40-0.47 s on a fresh broker, measured here; a fresh topic alone didn't help)
            fresh = start_tansu(log_path=logdir / "tansu-decay.log")
            try:
                moved = settings.model_copy(update={"kafka_bootstrap": fresh.address})
                await ensure_topics(moved)
                await decay_run(moved, res, decay, lead_s, spread_s, logdir)
            finally:
                fresh.stop()
            assert res.decay is not None
            print(
                f"decay: {res.decay.line()} (worker settled {res.decay_margin_s:.1f} s "
                "before the first due time)",
                flush=True,
            )
        res.load.append(os.getloadavg())
        return res
