"""Decay timeliness: customers due within a minute, fired by a live worker's timer.

Part of ``python -m bench`` (the latency figure's run): states are loaded with the real
``RedisStore.commit`` so their due times are the engine's ``next_due``, spread evenly
over a window that starts after the worker has settled; lateness is when the
``recency_decay`` transition is read minus its ``effective_at`` (the due time).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import numpy as np

from bench.observe import Lat, LatencyResults, Observer, iso_ms
from bench.procs import spawn, wait_owned
from schemas.settings import Settings
from segments.engine import Engine
from segments.model import NEVER, Columns, CustomerState
from segments.rules import build_engine
from state.store import RedisStore
from stream.kafka.clients import ensure_topics

DAY_MS = 86_400_000


def due_states(
    engine: Engine, ids: list[str], due_ms: np.ndarray, rng: np.random.Generator
) -> list[CustomerState]:
    """States whose next due time (recency edge) is ``due_ms``, segments set at the cursor."""
    edge = int(engine._edges.min())
    n = len(ids)
    last = due_ms - edge
    freq = rng.integers(1, 6, n)
    first = np.where(freq == 1, last, last - rng.integers(0, 365 * DAY_MS, n))
    monetary = rng.integers(10, 3000, n) * 10_000 * freq
    cols = Columns(last_ms=last, frequency=freq, monetary=monetary)
    segs = {s.name: s.classify(cols, last).tolist() for s in engine.schemes}
    return [
        CustomerState(
            customer_id=cid,
            frequency=int(freq[i]),
            monetary=int(monetary[i]),
            first_ms=int(first[i]),
            last_ms=int(last[i]),
            cursor_ms=int(last[i]),
            segments={name: v[i] for name, v in segs.items()},
            stamp=engine.stamp,
        )
        for i, cid in enumerate(ids)
    ]


async def load_due(
    store: RedisStore,
    engine: Engine,
    customers: int,
    partitions: int,
    start_ms: int,
    spread_ms: int,
) -> int:
    """Load the states; returns how many ``recency_decay`` transitions their due times
    bring (the engine, advanced to each one's due time: a due edge can be a score edge
    that moves no segment, e.g. two rfm27 recency scores mapping to one segment)."""
    rng = np.random.default_rng(11)
    expected = 0
    for p in range(partitions):
        claim = await store.claim(p)
        version = 0
        idx = np.arange(p, customers, partitions)
        for lo in range(0, idx.size, 10_000):
            part = idx[lo : lo + 10_000]
            due = start_ms + (part * spread_ms) // max(customers - 1, 1)
            states = due_states(engine, [f"d{i:07d}" for i in part.tolist()], due, rng)
            at = engine.next_due(states)
            if (at == NEVER).any() or not np.array_equal(at, due):
                raise AssertionError("the engine's due times differ from the planned ones")
            schedule = dict(zip((s.customer_id for s in states), at.tolist(), strict=True))
            version = await store.commit(p, claim.epoch, version, states, schedule, [])
            for state, t in zip(states, at.tolist(), strict=True):  # committed: may change
                moved = engine.advance([state], t).transitions
                expected += sum(1 for d in moved if d.cause == "recency_decay")
        # as a worker leaves it: every customer evaluated under these rules (the stamp
        # above), the partition swept. Unstamped, the worker would first re-evaluate all
        # of them as a rules change (a background sweep competing with the timer).
        await store.set_meta_field(p, "sweep", f"{engine.stamp}|done")
    return expected


async def decay_run(
    settings: Settings,
    res: LatencyResults,
    customers: int,
    lead_s: float,
    spread_s: float,
    logdir: Path,
) -> None:
    ns = f"decay-{uuid.uuid4().hex[:6]}"
    # its own transitions topic, as a fresh deployment has
    settings = settings.model_copy(update={"transitions_topic": f"transitions-{ns}"})
    await ensure_topics(settings)
    engine = build_engine(settings)
    store = RedisStore.from_url(settings.redis_url.get_secret_value(), "rfm", ns)
    start_ms = int(time.time() * 1000 + lead_s * 1000)
    try:
        expected = await load_due(
            store, engine, customers, settings.partitions, start_ms, int(spread_s * 1000)
        )
    finally:
        await store.close()
    obs = Observer(
        settings.kafka_bootstrap,
        settings.transitions_topic,
        settings.partitions,
        "transition_id",
        lambda d: d.get("cause") == "recency_decay" and d["customer_id"].startswith("d"),
    )
    await obs.start()
    proc = spawn(
        settings,
        ns,
        f"bench-{ns}",
        logdir / f"{ns}.log",
        http=True,
        extra={"RFM_DECAY_TIMER": "true"},
    )
    try:
        await wait_owned([proc], settings.partitions)
        res.decay_margin_s = start_ms / 1000 - time.time()
        res.decay_interval_ms = settings.decay_interval
        await obs.wait_for(expected, timeout_s=lead_s + spread_s + 60)
    finally:
        proc.stop()
        await obs.stop()
    lat = Lat(0, customers)
    for recv, d in obs.seen.values():
        eff, emitted = iso_ms(d["effective_at"]), iso_ms(d["emitted_at"])
        lat.ms.append(recv - eff)
        lat.before_emit.append(emitted - eff)
        lat.after_emit.append(recv - emitted)
    res.decay = lat
    res.decay_customers, res.decay_lead_s, res.decay_spread_s = customers, lead_s, spread_s
    res.decay_expected = expected
