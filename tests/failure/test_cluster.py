"""Scale-out: several workers on a real three-master Redis Cluster, and the layout guard.

The rebalance test compares the cluster run twice: with the pure engine's single pass
(``tests/support/failkit.py``) and with an actual single worker on a single redis-server fed the
same events. Both must agree on every customer's final state and on the set of
transition ids.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from segments import CustomerState
from tests.support.failkit import (
    NO_TIMER,
    applied,
    assert_effectively_once,
    final_states,
    latest_claim,
    produce_paced,
    wait_applied_alive,
    wait_applied_at_least,
    wait_outbox_empty,
    wait_split,
)
from tests.support.harness import ROOT, T0, Cluster, WorkerProc, history, minutes, purchase, story

pytestmark = pytest.mark.integration

MakeCluster = Callable[[str, str], Cluster]


async def outcome(
    cluster: Cluster,
    events: Sequence[dict[str, Any]],
    produced: Sequence[tuple[int, int]],
    alive: Sequence[WorkerProc],
) -> tuple[dict[str, CustomerState | None], dict[str, list[tuple[str, str, str, str]]]]:
    """Final states, and each customer's deduplicated story with its ids, once settled."""
    parts = cluster.settings().partitions
    await wait_applied_alive(cluster, produced, alive, wait_s=90)
    await wait_outbox_empty(cluster, parts, alive, wait_s=90)
    # drained outbox, every event applied, no timer: the topic holds all there will be
    got = await cluster.read_to_end(cluster.settings().transitions_topic, wait_s=60)
    deduped = list({t["transition_id"]: t for t in got}.values())
    with_ids = [{**t, "effective_at": f"{t['effective_at']}|{t['transition_id']}"} for t in deduped]
    return await final_states(cluster, produced, events), story(with_ids)


async def test_three_workers_on_a_redis_cluster_one_killed_one_added_match_one_worker(
    kafka_bootstrap: str, redis_cluster_url: str, single_redis_url: str, cluster_on: MakeCluster
) -> None:
    """Three workers share six partitions over three Redis masters; one is SIGKILLed and,
    later, a fourth joins, both while events flow. Then one worker on one redis-server
    processes the same events: same final states, same transition ids."""
    opts = {**NO_TIMER, "batch_max": "50", "partitions": "6"}
    big = cluster_on(kafka_bootstrap, redis_cluster_url)
    settings = await big.ensure_topics(**opts)
    parts = settings.partitions
    a, b, c = (big.start_worker(**opts) for _ in range(3))
    await wait_split([a, b, c], parts)

    events = history(customers=300, events=6000, seed=310)
    n = len(events)
    producing = asyncio.create_task(produce_paced(big, events, per_second=300))
    store = big.store()
    try:
        await wait_applied_at_least(store, parts, n // 5, wait_s=60)
        c.kill()  # SIGKILL: no LeaveGroup; its partitions wait for the session to expire
        killed_at = await applied(store, parts)
        await wait_split([a, b], parts, wait_s=60)
        await wait_applied_at_least(store, parts, n // 3, wait_s=60)
        d = big.start_worker(**opts)
        split = await wait_split([a, b, d], parts, wait_s=60)
        joined_at = await applied(store, parts)
    finally:
        await store.close()
    assert killed_at < joined_at < n, "the stream ended before the kill and the join"
    produced = await producing
    await assert_effectively_once(big, settings, events, produced, [a, b, d])
    assert latest_claim(d), "the added worker owns nothing"
    got_states, got_story = await outcome(big, events, produced, [a, b, d])

    one = cluster_on(kafka_bootstrap, single_redis_url)
    await one.ensure_topics(**opts)
    solo = one.start_worker(**opts)
    ref_produced = await one.produce(events)
    want_states, want_story = await outcome(one, events, ref_produced, [solo])

    assert [p for p, _ in ref_produced] == [p for p, _ in produced]  # same key -> partition
    assert got_states == want_states
    assert got_story == want_story
    print(f"\nkilled at {killed_at}/{n}, fourth joined at {joined_at}/{n}, split {split}")


def run_cli(cluster: Cluster, *args: str, **overrides: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RFM_")}
    env.update(cluster.env(**overrides))
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line_refusal(proc: subprocess.CompletedProcess[str], built: int, now: int) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    line = lines[0]
    assert f"built for {built} partitions" in line and f"has {now}:" in line, line
    assert "backfill" in line and "promote" in line, line
    return line


async def test_a_worker_refuses_a_namespace_built_for_another_partition_count(
    kafka_bootstrap: str, redis_cluster_url: str, cluster_on: MakeCluster
) -> None:
    """The namespace was built from a 4-partition topic; the topic now has 2 (here: the
    worker is pointed at a 2-partition topic). The worker, a backfill into a namespace
    built for 4, and promoting such a namespace all refuse with one line; the documented
    procedure (backfill into a new namespace, promote) works."""
    c = cluster_on(kafka_bootstrap, redis_cluster_url)
    four = {**NO_TIMER, "partitions": "4"}
    await c.ensure_topics(**four)
    worker = c.start_worker(**four)
    events = [purchase(f"k{i}", i, T0 + minutes(i), "50") for i in range(40)]
    await c.wait_applied(await c.produce(events), check=lambda: _alive(worker))
    worker.stop()
    shadow = f"s{c.suffix}"
    backfilled = run_cli(c, "backfill", "--into", shadow, "--no-progress", **four)
    assert backfilled.returncode == 0, backfilled.stderr

    # the same namespaces, now read through a topic of 2 partitions
    two = {**NO_TIMER, "partitions": "2", "purchases_topic": f"purchases2-{c.suffix}"}
    await c.ensure_topics(**two)
    await c.produce(events)  # the old events, as a repartitioned topic would hold them
    refused = run_cli(c, "worker", **two)
    line = one_line_refusal(refused, built=4, now=2)
    assert repr(c.settings().namespace) in line
    one_line_refusal(run_cli(c, "backfill", "--into", shadow, "--no-progress", **two), 4, 2)
    one_line_refusal(run_cli(c, "promote", shadow, **two), 4, 2)

    fresh = f"n{c.suffix}"
    assert run_cli(c, "backfill", "--into", fresh, "--no-progress", **two).returncode == 0
    promoted = run_cli(c, "promote", fresh, **two)
    assert promoted.returncode == 0, promoted.stderr
    after = c.start_worker(**two)
    after.wait_for_log("claimed partitions [0, 1]", timeout=60)


def _alive(worker: WorkerProc) -> None:
    assert worker.proc.poll() is None, worker.text()[-3000:]
