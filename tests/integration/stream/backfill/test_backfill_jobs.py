"""Parallel backfill (``--jobs``): the one-process result, resumable after a child or the
parent dies, children never outliving the parent, fenced like one process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import stream.backfill.run as backfill_module
from schemas.errors import SettingsError
from schemas.settings import Settings
from stream.backfill.run import BackfillOptions, backfill_topic
from tests.integration.stream.backfill.test_backfill import (
    KNOBS,
    backfill_cmd,
    comparable,
    states_of,
    timeline,
)
from tests.support.harness import ROOT, Cluster

pytestmark = pytest.mark.integration


def children_of(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            out.append(int(entry.name))
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def _committed(cluster: Cluster, ns: str, partitions: int) -> int:
    store = cluster.store(namespace=ns)
    try:
        offs = await store.committed_offsets(range(partitions))
    finally:
        await store.close()
    return sum(o + 1 for o in offs.values())


async def _start_and_wait(
    cluster: Cluster, settings: Settings, ns: str, topic: str, env: dict[str, str], at_least: int
) -> subprocess.Popen[str]:
    """A CLI backfill with 2 jobs and small batches, once both children run and at least
    ``at_least`` records are committed."""
    proc = subprocess.Popen(  # noqa: ASYNC220 - a real process tree to kill
        backfill_cmd(ns, topic, "--jobs", "2"),
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        running = len(children_of(proc.pid)) == 2
        if running and await _committed(cluster, ns, settings.partitions) >= at_least:
            return proc
        assert proc.poll() is None, proc.communicate()
        await asyncio.sleep(0.02)
    proc.kill()
    proc.communicate(timeout=10)
    raise AssertionError("the backfill's children did not start committing in 60 s")


@pytest.mark.parametrize("rules", ["quantile", "fixed"])
async def test_jobs_give_the_one_process_state_and_transitions(
    cluster: Cluster, rules: str
) -> None:
    settings = await cluster.ensure_topics(**KNOBS)
    if rules == "quantile":  # the shipped rules: ranked at the end and swept by the children
        settings = settings.model_copy(update={"rules": None})
    events = timeline(customers=60, events=3000, seed=21)
    await cluster.produce(events)
    runs = {}
    for jobs in (1, 2, 4):
        ns, topic = f"j{jobs}{cluster.suffix}", f"j{jobs}-{cluster.suffix}"
        report = await backfill_topic(
            settings,
            BackfillOptions(namespace=ns, emit_topic=topic, batch=200, progress=False, jobs=jobs),
        )
        assert report.jobs == jobs and report.events == len(events)
        # the run returned: every transition it emitted is acknowledged (a shortfall fails
        # the count below, it is not waited out)
        ids = [t["transition_id"] for t in await cluster.read_to_end(topic)]
        assert len(ids) == report.transitions
        runs[jobs] = (comparable(await states_of(cluster, ns)), sorted(ids))
    assert runs[2] == runs[1]
    assert runs[4] == runs[1]
    if rules == "quantile":
        causes = {t["cause"] for t in await cluster.read_to_end(f"j2-{cluster.suffix}")}
        assert "recalibration" in causes, causes


async def test_a_dead_child_or_parent_then_a_resume_gives_the_one_process_result(
    cluster: Cluster,
) -> None:
    settings = await cluster.ensure_topics(**KNOBS)
    events = timeline(customers=80, events=6000, seed=22)
    await cluster.produce(events)
    env = {**os.environ, **cluster.env(**KNOBS), "PYTHONPATH": str(ROOT)}
    ns, topic = f"k{cluster.suffix}", f"k-{cluster.suffix}"

    # a child dies: the backfill fails with one line, and takes its other child down
    proc = await _start_and_wait(cluster, settings, ns, topic, env, at_least=500)
    kids = children_of(proc.pid)
    os.kill(kids[0], signal.SIGKILL)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "was killed by signal 9" in err, err
    assert not any(alive(k) for k in kids)

    # the parent dies: so do its children
    proc = await _start_and_wait(cluster, settings, ns, topic, env, at_least=2500)
    kids = children_of(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    deadline = time.monotonic() + 30  # a condition, polled: generous for a loaded machine
    while time.monotonic() < deadline:
        if not any(alive(k) for k in kids):
            break
        await asyncio.sleep(0.05)
    assert not any(alive(k) for k in kids), "orphaned backfill children"
    assert await _committed(cluster, ns, settings.partitions) < len(events), "finished early"

    done = await asyncio.to_thread(
        subprocess.run,
        backfill_cmd(ns, topic, "--jobs", "2"),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "2 processes" in done.stdout

    ns_one, topic_one = f"o{cluster.suffix}", f"o-{cluster.suffix}"
    await backfill_topic(
        settings, BackfillOptions(namespace=ns_one, emit_topic=topic_one, progress=False, jobs=1)
    )
    assert comparable(await states_of(cluster, ns)) == comparable(await states_of(cluster, ns_one))
    ids = {t["transition_id"] for t in await cluster.read_to_end(topic)}
    assert ids == {t["transition_id"] for t in await cluster.read_to_end(topic_one)}


async def test_a_claim_by_another_process_stops_a_parallel_backfill(cluster: Cluster) -> None:
    settings = await cluster.ensure_topics(**KNOBS)
    # enough records that the backfill can't finish between the check below and the claim
    await cluster.produce(timeline(customers=80, events=20_000, seed=23))
    ns = f"f{cluster.suffix}"
    running = asyncio.create_task(
        backfill_topic(settings, BackfillOptions(namespace=ns, batch=50, progress=False, jobs=2))
    )
    store = cluster.store(namespace=ns)
    try:
        # partition 1 applied by its child first: a claim made before the child's own
        # claim is simply overtaken by it (the later claim wins; that is not this test)
        deadline = time.monotonic() + 60
        while (await store.committed_offsets([1]))[1] < 0:
            assert time.monotonic() < deadline and not running.done()
            await asyncio.sleep(0.02)
        await store.claim(1)  # what a second backfill into the namespace does first
    finally:
        await store.close()
    with pytest.raises(SettingsError, match="partition 1 was claimed by another process"):
        await asyncio.wait_for(running, 60)


@pytest.mark.parametrize("jobs", [1, 2])
async def test_a_run_that_died_before_ranking_is_finished_by_the_next(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    """Killed after applying every record but before the namespace was ranked and swept:
    the next run has nothing left to apply and must still finish it (it used to mark the
    partitions swept without ranking anyone)."""
    settings = (await cluster.ensure_topics(**KNOBS)).model_copy(update={"rules": None})
    await cluster.produce(timeline(customers=60, events=2000, seed=31))
    ref = f"r{jobs}{cluster.suffix}"
    await backfill_topic(settings, BackfillOptions(namespace=ref, progress=False, jobs=1))

    async def died(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("killed after applying every record")

    ns = f"d{jobs}{cluster.suffix}"
    with monkeypatch.context() as m:
        m.setattr(backfill_module, "finish_namespace", died)  # where one process ranks
        m.setattr(backfill_module, "rank_namespace", died)  # where a parallel parent does
        with pytest.raises(RuntimeError, match="killed after applying"):
            await backfill_topic(settings, BackfillOptions(namespace=ns, progress=False, jobs=jobs))
    report = await backfill_topic(
        settings, BackfillOptions(namespace=ns, progress=False, jobs=jobs)
    )
    assert report.events == 0
    expected = comparable(await states_of(cluster, ref))
    assert any(seg != "none" for *_, segs in expected.values() for seg in segs.values())
    assert comparable(await states_of(cluster, ns)) == expected
    # and a run after a finished one leaves it alone
    again = await backfill_topic(settings, BackfillOptions(namespace=ns, progress=False, jobs=jobs))
    assert again.events == 0 and again.transitions == 0
    assert comparable(await states_of(cluster, ns)) == expected
