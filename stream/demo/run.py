"""``rfm-stream demo``: the whole system on real parts, on one machine, in under a minute.

Starts an embedded Tansu broker and a private redis-server on free ports, runs a real
``rfm-stream worker`` process against them, feeds a seeded stream of POS purchases
(plus a few malformed messages, to show the dead-letter topic), prints every
transition as it is published, waits for customers who stopped buying to decay
(recency is seconds here, so 高价值客户 → 休眠客户 happens on screen), prints segment
sizes and shuts everything down, including on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from schemas.settings import Settings, load_settings
from segments.rfm8 import RFM8_LABELS
from state.store import RedisStore
from stream.cli.terminal import pad
from stream.demo.embedded import start_redis, start_tansu
from stream.kafka.clients import ensure_topics
from stream.kafka.security import kafka_consumer, kafka_producer

__all__ = ["DemoOptions", "generate_events", "run_demo"]


@dataclass(frozen=True)
class DemoOptions:
    customers: int = 300
    events: int = 3000
    seed: int = 7
    seconds: float = 15.0
    quiet: bool = False


DEMO_ENV = {
    "RFM_NAMESPACE": "demo",
    "RFM_RECENCY": "8s",
    "RFM_FREQUENCY_CUT": "5",
    "RFM_MONETARY_CUT": "1500",
    "RFM_DECAY_INTERVAL": "250ms",
    "RFM_QUANTILE_REFRESH": "3s",  # the quantile schemes follow the fast-moving demo base
    "RFM_KAFKA_SESSION_TIMEOUT": "3s",
    "RFM_LOG_LEVEL": "warning",
    "RFM_HTTP_PORT": "0",
}


def generate_events(opts: DemoOptions) -> list[tuple[float, dict[str, str]]]:
    """Seeded, skewed demo purchases as (seconds from start, event without occurred_at).

    A few customers buy often and big; most buy rarely; about a third stop buying
    half-way through, so the decay to dormant/churning shows before the demo ends;
    about 1 order in 25 is refunded, in full or in part, a few seconds later.
    """
    rng = np.random.default_rng(opts.seed)
    n = opts.customers
    weight = rng.lognormal(0.0, 1.0, n)
    weight /= weight.sum()
    basket = rng.lognormal(5.3, 0.6, n)  # typical basket ~200 CNY, skewed per customer
    stop = np.where(rng.random(n) < 0.35, rng.uniform(0.2, 0.5, n), 1.0) * opts.seconds
    who = rng.choice(n, size=opts.events, p=weight)
    when = rng.uniform(0, 1, opts.events) * stop[who]
    amount = rng.lognormal(np.log(basket[who]), 0.4)
    rows: list[tuple[float, dict[str, str]]] = []
    for k in range(opts.events):
        c = int(who[k])
        base = {
            "customer_id": f"c{c:04d}",
            "store_id": f"s{c % 7:02d}",
            "channel": "pos" if c % 3 else "online",
            "currency": "CNY",
        }
        order = f"o{k:06d}"
        rows.append(
            (
                float(when[k]),
                {
                    **base,
                    "event_id": f"demo-{opts.seed}-{k}",
                    "order_id": order,
                    "amount": f"{amount[k]:.2f}",
                },
            )
        )
        if rng.random() < 0.04:  # about 1 in 25 orders comes back, in full or in part
            back = amount[k] if rng.random() < 0.5 else amount[k] * rng.uniform(0.2, 0.8)
            later = min(float(when[k]) + rng.uniform(0.5, 3.0), opts.seconds)
            rows.append(
                (
                    later,
                    {
                        **base,
                        "kind": "refund",
                        "event_id": f"demo-{opts.seed}-r{k}",
                        "order_id": f"r{k:06d}",
                        "refund_of": order,
                        "amount": f"{min(back, amount[k]):.2f}",
                    },
                )
            )
    rows.sort(key=lambda r: r[0])
    return rows


def _fmt(t: dict[str, Any]) -> str:
    s = t["snapshot"]
    at = t["effective_at"][11:23]
    frm = t["from_label"] if t["from_segment"] != "none" else "—"
    return (
        f"{at}  {t['customer_id']}  {frm} → {t['to_label']} ({t['to_segment']})"
        f"  [{t['cause']}]  R {s['recency_days'] * 86400:5.1f}s  F {s['frequency']:>2}"
        f"  M {s['monetary']:>9} {s['currency']}"
    )


async def _drive(settings: Settings, opts: DemoOptions, worker: subprocess.Popen[bytes]) -> int:
    assert settings.recency is not None, "DEMO_ENV sets RFM_RECENCY: the decay is timed by it"
    # a decay fires RFM_DECAY_GRACE after its due time (0 unless the environment sets it)
    decays_after_s = (settings.recency + settings.decay_grace) / 1000
    await ensure_topics(settings)
    producer = kafka_producer(settings, linger_ms=5)
    consumer = kafka_consumer(
        settings,
        settings.transitions_topic,
        settings.dlq_topic,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await producer.start()
    await consumer.start()
    causes: Counter[tuple[str, str]] = Counter()
    dead: Counter[str] = Counter()
    last_seen = time.monotonic()
    try:

        async def show() -> None:
            nonlocal last_seen
            async for msg in consumer:
                last_seen = time.monotonic()
                data = orjson.loads(msg.value)
                if msg.topic == settings.dlq_topic:
                    dead[data["error_class"]] += 1
                    print(
                        f"DEAD LETTER  p{data['partition']}@{data['offset']}: "
                        f"{data['error_class']}: {data['error_message']}"
                    )
                    continue
                causes[(data["scheme"], data["cause"])] += 1
                if not opts.quiet and data["scheme"] == "rfm8":  # the story; others counted
                    print(_fmt(data))

        printer = asyncio.create_task(show())
        events = generate_events(opts)
        bad_at = {len(events) // 4: b"{not json", len(events) // 2: b'{"customer_id": "c1"}'}
        print(
            f"feeding {len(events)} purchases for {opts.customers} customers over "
            f"{opts.seconds:.0f}s (recency {DEMO_ENV['RFM_RECENCY']}, "
            f"F ≥ {settings.frequency_cut}, M ≥ {settings.monetary_cut} CNY)"
        )
        start = time.monotonic()
        for k, (offset_s, ev) in enumerate(events):
            if worker.poll() is not None:
                raise RuntimeError(f"worker exited with code {worker.returncode}")
            delay = start + offset_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            ev = {**ev, "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds")}
            await producer.send(
                settings.purchases_topic, orjson.dumps(ev), key=ev["customer_id"].encode()
            )
            if k in bad_at:
                await producer.send(settings.purchases_topic, bad_at[k], key=b"c1")
        await producer.flush()
        await asyncio.sleep(1.0)  # let the worker apply the last batch
        at_feed_end = await _segment_sizes(settings)
        print(f"--- fed; waiting {decays_after_s:.0f}s+ for customers who stopped buying to decay")
        deadline = time.monotonic() + decays_after_s + 20
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            quiet_for = time.monotonic() - last_seen
            since_feed = time.monotonic() - start - opts.seconds
            if since_feed > decays_after_s + 2 and quiet_for > 2:
                break
        printer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await printer
    finally:
        await consumer.stop()
        await producer.stop()
    after_decay = await _segment_sizes(settings)
    _summary(at_feed_end, after_decay, causes, dead)
    return 0


async def _segment_sizes(settings: Settings) -> Counter[tuple[str, str]]:
    store = RedisStore.from_settings(settings)
    try:
        states = await store.scans.scan_states()
    finally:
        await store.close()
    return Counter((scheme, key) for s in states for scheme, key in s.segments.items())


def _summary(
    before: Counter[tuple[str, str]],
    after: Counter[tuple[str, str]],
    causes: Counter[tuple[str, str]],
    dead: Counter[str],
) -> None:
    print("\nsegment sizes (rfm8)")
    print(f"  {pad('segment', 14)}{pad('label', 16)}{'end of feed':>12}{'after decay':>13}")
    for key, label in RFM8_LABELS.items():
        b, a = before.get(("rfm8", key), 0), after.get(("rfm8", key), 0)
        print(f"  {pad(key, 14)}{pad(label, 16)}{b:>12}{a:>13}")
    total_b = sum(n for (scheme, _), n in before.items() if scheme == "rfm8")
    total_a = sum(n for (scheme, _), n in after.items() if scheme == "rfm8")
    print(f"  {pad('total', 30)}{total_b:>12}{total_a:>13}")
    others = sorted({scheme for scheme, _ in after} - {"rfm8"})
    if others:
        print("\nthe other schemes of the rules file, after decay")
    for scheme in others:
        sizes = sorted(
            ((k, n) for (sch, k), n in after.items() if sch == scheme and k != "none"),
            key=lambda kn: -kn[1],
        )
        print(f"  {pad(scheme, 9)}" + ", ".join(f"{k}={n}" for k, n in sizes))
    print("\ntransitions by scheme and cause:")
    for scheme in sorted({sch for sch, _ in causes}):
        counts = sorted((c, n) for (sch, c), n in causes.items() if sch == scheme)
        print(f"  {pad(scheme, 9)}" + ", ".join(f"{c}={n}" for c, n in counts))
    print("dead letters: " + (", ".join(f"{c}={n}" for c, n in dead.items()) or "none"))


def run_demo(opts: DemoOptions) -> int:
    logdir = Path(tempfile.mkdtemp(prefix="rfm-demo-"))
    print("starting embedded broker (Tansu) and redis-server on free ports ...")
    tansu = start_tansu(log_path=logdir / "tansu.log")
    redis = start_redis()
    worker: subprocess.Popen[bytes] | None = None
    try:
        env = {
            **os.environ,
            **DEMO_ENV,
            "RFM_KAFKA_BOOTSTRAP": tansu.address,
            "RFM_REDIS_URL": f"redis://{redis.address}/0",
        }
        settings = load_settings(
            **{k.removeprefix("RFM_").lower(): v for k, v in env.items() if k.startswith("RFM_")}
        )
        with open(logdir / "worker.log", "wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "stream.cli", "worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        print(
            f"broker {tansu.address}, redis {redis.address}, worker pid {worker.pid} "
            f"(log: {logdir / 'worker.log'})"
        )
        return asyncio.run(_drive(settings, opts, worker))
    finally:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(5)
        redis.stop()
        tansu.stop()
        print("stopped worker, broker and redis")
