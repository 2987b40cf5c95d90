"""The operations commands refuse what would lose, double or flood, in one line (issue #16
items 5, 6, 8), and a promote's leftover outbox is published, never dropped.

Through the real CLI against the real broker and redis-server of the ``cluster`` fixture.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import orjson
import pytest

from state.keys import Keys
from state.namespaces import BUILD, BUILDING
from stream.backfill.run import BackfillOptions, backfill_topic
from tests.integration.stream.backfill.test_backfill import cli, states_of
from tests.support.harness import ROOT, T0, Cluster, purchase

pytestmark = pytest.mark.integration


def refused(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    """``proc`` ended with one line on stderr, exit code 2, naming ``words``."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr[-3000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


async def test_namespace_arguments_are_never_patterns(cluster: Cluster) -> None:
    settings = await cluster.ensure_topics()
    produced = await cluster.produce([purchase(f"c{i}", i, T0) for i in range(8)])
    worker = cluster.start_worker(decay_timer="false")
    await cluster.wait_applied(produced)
    worker.stop()
    before = await states_of(cluster, settings.namespace)
    assert len(before) == 8
    for args in (("drop", "*"), ("drop", "t*"), ("promote", "r?"), ("promote", "[a-z]*")):
        refused(await asyncio.to_thread(cli, cluster, *args), "not a namespace name")
    refused(
        await asyncio.to_thread(cli, cluster, "backfill", "--into", "b*", "--no-progress"),
        "--into",
        "not a namespace name",
    )
    assert await states_of(cluster, settings.namespace) == before


async def test_promote_refuses_an_unfinished_backfill(cluster: Cluster) -> None:
    settings = await cluster.ensure_topics()
    await cluster.produce([purchase(f"c{i}", i, T0) for i in range(8)])
    ns = f"u{cluster.suffix}"
    await backfill_topic(settings, BackfillOptions(namespace=ns, progress=False, jobs=1))
    store = cluster.store(namespace=ns)
    try:  # as a backfill killed part-way leaves it
        await store.set_meta_field(2, BUILD, BUILDING)
    finally:
        await store.close()
    refused(await asyncio.to_thread(cli, cluster, "promote", ns), "not a finished backfill")
    store = cluster.store()
    try:
        assert await store.serving(settings.namespace) == settings.namespace
    finally:
        await store.close()
    # the same backfill run again finishes it: then it is promoted
    await backfill_topic(settings, BackfillOptions(namespace=ns, progress=False, jobs=1))
    done = await asyncio.to_thread(cli, cluster, "promote", ns)
    assert done.returncode == 0, done.stderr


async def test_nothing_claims_the_live_namespace_under_another_name(cluster: Cluster) -> None:
    """Once promoted, ``ns`` is the live namespace under the name ``settings.namespace``:
    a backfill into it (or a promote of it for another name) would bump its epochs and
    fence the live worker."""
    settings = await cluster.ensure_topics()
    await cluster.produce([purchase(f"c{i}", i, T0) for i in range(8)])
    ns = f"s{cluster.suffix}"
    await backfill_topic(settings, BackfillOptions(namespace=ns, progress=False, jobs=1))
    assert (await asyncio.to_thread(cli, cluster, "promote", ns)).returncode == 0
    store = cluster.store(namespace=ns)
    try:
        epochs = [(await store.meta(p))[0] for p in range(settings.partitions)]
        line = refused(
            await asyncio.to_thread(cli, cluster, "backfill", "--into", ns, "--no-progress"),
            "live namespace of",
        )
        assert repr(settings.namespace) in line
        env = {**os.environ, **cluster.env(namespace=f"x{cluster.suffix}")}
        other = subprocess.run(  # noqa: ASYNC221 - the CLI, for another live name
            [sys.executable, "-m", "stream.cli", "promote", ns],
            env={**env, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        refused(other, "live namespace of")
        assert [(await store.meta(p))[0] for p in range(settings.partitions)] == epochs
    finally:
        await store.close()


async def test_a_retired_outbox_is_published_before_it_can_be_dropped(cluster: Cluster) -> None:
    """Transitions committed to the old namespace's outbox and not published when it was
    promoted away (its worker died before publishing them): the worker serving the name
    publishes them, and ``drop`` refuses the old namespace until then."""
    settings = await cluster.ensure_topics()
    old = cluster.store()
    try:
        for p in range(settings.partitions):  # committed, never published
            claim = await old.claim(p)
            box = [(f"c{p}", orjson.dumps({"transition_id": f"left-{p}-{i}"})) for i in range(3)]
            await old.commit(p, claim.epoch, 0, [], {}, box, offset=-1)
    finally:
        await old.close()
    ns = f"r{cluster.suffix}"
    await backfill_topic(settings, BackfillOptions(namespace=ns, progress=False, jobs=1))
    assert (await asyncio.to_thread(cli, cluster, "promote", ns)).returncode == 0
    refused(
        await asyncio.to_thread(cli, cluster, "drop", settings.namespace),
        "12 transitions in its outbox",
    )

    cluster.start_worker(decay_timer="false")
    want = {f"left-{p}-{i}" for p in range(settings.partitions) for i in range(3)}
    seen = await cluster.transitions(lambda ts: want <= {t["transition_id"] for t in ts}, 60)
    assert want <= {t["transition_id"] for t in seen}

    client = await cluster.store().connect()
    try:
        deadline = asyncio.get_running_loop().time() + 30
        keys = Keys(settings.key_prefix, settings.namespace)
        while any([await client.xlen(keys.outbox(p)) for p in range(settings.partitions)]):
            assert asyncio.get_running_loop().time() < deadline, "outbox never acknowledged"
            await asyncio.sleep(0.1)
    finally:
        await client.aclose()
    dropped = await asyncio.to_thread(cli, cluster, "drop", settings.namespace)
    assert dropped.returncode == 0, dropped.stderr


async def test_a_backfill_refuses_to_emit_into_the_live_input_topics(cluster: Cluster) -> None:
    settings = cluster.settings()
    for topic in (settings.purchases_topic, settings.dlq_topic):
        proc = await asyncio.to_thread(
            cli, cluster, "backfill", "--into", f"e{cluster.suffix}", "--emit-topic", topic
        )
        refused(proc, "--emit-topic", "never publish there")
