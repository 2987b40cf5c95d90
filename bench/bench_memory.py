"""Redis memory per customer at scale, with realistic state, and where it goes.

    python -m bench --only memory     (sizes in bench/__main__.py)

Starts its own redis-server. Realistic states come from the real engine: the seeded
workload (``bench.workload``, ~4.6 events per customer, refunds included) is applied
with ``Engine.apply_events`` (orders in the refund window, dedupe digests, segments),
and the resulting templates are cloned under new customer ids up to ``customers``
(same sizes, different keys). They are written with the real ``RedisStore.commit``
(claim + 10,000 per call, spread over the partitions), each with its schedule entry.

Bytes per customer = (``INFO memory`` used_memory after loading − used_memory of the
same empty server after the scripts are loaded) / customers. The breakdown uses
``MEMORY USAGE`` (SAMPLES 0: exact) of a sample of customer hashes and of every key of
the schedule (``state.schedule``: bucket index, buckets, legacy set); the rest (keyspace
dict, allocator overhead) is "other".
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import statistics
import time
from dataclasses import dataclass, field

import numpy as np
import orjson

from bench.workload import END, generate
from schemas.events import parse_event
from schemas.settings import load_settings
from segments.model import NEVER, CustomerState
from segments.rules import build_engine
from state.store import RedisStore
from stream.apply.messages import engine_event
from stream.demo.embedded import start_redis


@dataclass
class MemoryResults:
    customers: int = 0
    partitions: int = 4
    templates: int = 0
    empty: int = 0
    used: int = 0
    load_s: float = 0.0
    hash_bytes: list[int] = field(default_factory=list)  # MEMORY USAGE of sampled hashes
    due_bytes: int = 0  # MEMORY USAGE of every schedule key (index, buckets, legacy set)
    buckets: dict[str, int] = field(default_factory=dict)  # schedule buckets by encoding
    encodings: dict[str, list[int]] = field(default_factory=dict)  # sampled bytes by encoding
    load: list[tuple[float, float, float]] = field(default_factory=list)
    orders: float = 0.0  # mean orders kept per template
    digests: float = 0.0  # mean dedupe digests per template
    fields_len: float = 0.0  # mean bytes of the encoded hash fields + values
    redis_version: str = ""
    listpack_max: int = 0  # hash-max-listpack-value
    long_values: dict[str, float] = field(default_factory=dict)  # field -> share over it

    @property
    def per_customer(self) -> float:
        return (self.used - self.empty) / self.customers

    @property
    def hash_mean(self) -> float:
        return statistics.mean(self.hash_bytes)


def templates(n: int, seed: int) -> list[CustomerState]:
    """States of ~``n`` customers after the seeded workload, as of its end."""
    events = generate(int(n * 4.6), n, seed)
    settings = load_settings()
    engine = build_engine(settings)
    states: dict[str, CustomerState] = {}
    # as of the workload's end, so the windows hold what a live worker would keep
    evs = [engine_event(parse_event(orjson.dumps(e)), f"0:{i}") for i, e in enumerate(events)]
    engine.apply_events(states, evs)
    return list(states.values())


async def bench(customers: int, n_templates: int, partitions: int, seed: int) -> MemoryResults:
    res = MemoryResults(customers=customers, partitions=partitions)
    res.load.append(os.getloadavg())
    server = start_redis()
    try:
        url = f"redis://{server.address}/0"
        settings = load_settings(partitions=partitions)
        engine = build_engine(settings)
        store = RedisStore.from_url(url, "rfm", "mem")
        res.redis_version = (await store.client.info("server"))["redis_version"]
        tpl = templates(n_templates, seed)
        res.templates = len(tpl)
        res.orders = statistics.mean(len(s.orders) for s in tpl)
        res.digests = statistics.mean(len(s.seen) for s in tpl)
        # the scripts and an empty commit loaded first, so the baseline holds them
        warm = RedisStore.from_url(url, "rfm", "warm")
        c = await warm.claim(0)
        await warm.commit(0, c.epoch, 0, [], {}, [])
        await warm.client.flushall()
        await warm.close()
        await asyncio.sleep(0.2)
        res.empty = int((await store.client.info("memory"))["used_memory"])
        t0 = time.perf_counter()
        for p in range(partitions):
            claim = await store.claim(p)
            version = 0
            ids = np.arange(p, customers, partitions)
            for lo in range(0, ids.size, 10_000):
                chunk = [
                    dataclasses.replace(tpl[i % len(tpl)], customer_id=f"c{i:07d}")
                    for i in ids[lo : lo + 10_000].tolist()
                ]
                due = engine.next_due(chunk)
                # a schedule entry for everyone (as a live customer has one; NEVER: none)
                due = np.where(due == NEVER, int(END.timestamp() * 1000), due)
                schedule = dict(zip((s.customer_id for s in chunk), due.tolist(), strict=True))
                version = await store.commit(p, claim.epoch, version, chunk, schedule, [])
        res.load_s = time.perf_counter() - t0
        await asyncio.sleep(0.2)
        res.used = int((await store.client.info("memory"))["used_memory"])
        rng = np.random.default_rng(seed)
        sample = rng.choice(customers, min(2000, customers), replace=False).tolist()
        for i in sample:
            key = store.keys.customer(i % partitions, f"c{i:07d}")
            size = int(await store.client.memory_usage(key, samples=0))
            res.hash_bytes.append(size)
            enc = str(await store.client.object("encoding", key))
            res.encodings.setdefault(enc, []).append(size)
        res.due_bytes, res.buckets = await schedule_bytes(store, partitions)
        res.fields_len = statistics.mean(
            sum(len(str(x)) for x in codec_fields(s)) for s in tpl[:2000]
        )
        res.listpack_max = int(
            (await store.client.config_get("hash-max-listpack-value")).get(
                "hash-max-listpack-value", 0
            )
        )
        res.long_values = _long_values(tpl, res.listpack_max)
        await store.close()
        res.load.append(os.getloadavg())
        return res
    finally:
        server.stop()


async def schedule_bytes(store: RedisStore, partitions: int) -> tuple[int, dict[str, int]]:
    """MEMORY USAGE of all the schedule's keys (state.schedule), and its buckets by
    encoding."""
    total, encodings = 0, {}
    c = store.client
    for p in range(partitions):
        keys = [store.keys.schedule_index(p), store.keys.due(p)]
        buckets = [k async for k in c.scan_iter(f"{store.keys.tag(p)}:s:*", count=10_000)]
        for key in keys + buckets:
            total += int(await c.memory_usage(key, samples=0) or 0)
        for key in buckets:
            enc = str(await c.object("encoding", key))
            encodings[enc] = encodings.get(enc, 0) + 1
    return total, encodings


def _long_values(tpl: list[CustomerState], limit: int) -> dict[str, float]:
    """Per hash field: the share of templates whose value is longer than ``limit`` bytes
    (one such value turns the whole hash from listpack into a hashtable)."""
    from state.codec import encode_state

    over: dict[str, int] = {}
    for s in tpl:
        flat = encode_state(s)
        for name, value in zip(flat[::2], flat[1::2], strict=True):
            if len(str(value).encode()) > limit:
                over[str(name)] = over.get(str(name), 0) + 1
    return {k: v / len(tpl) for k, v in sorted(over.items())}


def codec_fields(s: CustomerState) -> list[str | int]:
    from state.codec import encode_state

    return encode_state(s)
