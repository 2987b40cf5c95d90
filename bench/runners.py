"""The measured pipelines: a real live worker process, and backfill in process or as the CLI."""

from __future__ import annotations

import asyncio
import cProfile
import gc
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.profiling import format_profile
from schemas.settings import Settings
from state.store import RedisStore
from stream.backfill.run import BackfillOptions, BackfillReport, backfill_topic

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------- b. live worker
@dataclass
class LiveRun:
    events: int  # records applied between the first commit seen and the end
    seconds: float  # from the first commit seen to all offsets covered
    join_s: float  # from process start to the first commit seen


def worker_env(settings: Settings, namespace: str, group: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RFM_")}
    env.update(
        {
            "RFM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "RFM_REDIS_URL": settings.redis_url.get_secret_value(),
            "RFM_NAMESPACE": namespace,
            "RFM_GROUP_ID": group,
            "RFM_PURCHASES_TOPIC": settings.purchases_topic,
            "RFM_TRANSITIONS_TOPIC": settings.transitions_topic,
            "RFM_DLQ_TOPIC": settings.dlq_topic,
            "RFM_PARTITIONS": str(settings.partitions),
            "RFM_DECAY_TIMER": "false",
            "RFM_HTTP_PORT": "0",
            "RFM_KAFKA_SESSION_TIMEOUT": "3s",
            "RFM_LOG_LEVEL": "warning",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def spawn_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as fh:  # the child keeps its own copy of the fd
        return subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "worker"],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
        )


async def live_worker(
    settings: Settings, namespace: str, last: dict[int, int], logdir: Path
) -> LiveRun:
    log = logdir / "worker.log"
    group = f"bench-{namespace}"
    env = worker_env(settings, namespace, group)
    store = RedisStore.from_url(settings.redis_url.get_secret_value(), "rfm", namespace)
    t_start = time.perf_counter()
    proc = spawn_worker(env, log)
    try:
        t_first: float | None = None
        covered_at_first = 0
        deadline = time.monotonic() + 900
        while True:
            committed = await store.committed_offsets(last)
            now = time.perf_counter()
            if t_first is None and any(o >= 0 for o in committed.values()):
                t_first = now
                covered_at_first = sum(o + 1 for o in committed.values() if o >= 0)
            if all(committed[p] >= o for p, o in last.items()):
                break
            if proc.poll() is not None:
                raise RuntimeError(
                    f"worker exited ({proc.returncode}):\n{log.read_text(errors='replace')[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker did not catch up in 900 s: {committed} < {last}")
            await asyncio.sleep(0.02)
        assert t_first is not None
        total = sum(o + 1 for o in last.values())
        return LiveRun(total - covered_at_first, now - t_first, t_first - t_start)
    finally:
        await store.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        # faust's data dir (it keeps one even without tables): in the temp dir, or the
        # working directory with older versions of stream/live/runtime.py
        for datadir in (
            Path(tempfile.gettempdir()) / f"rfm-stream-{group}",
            ROOT / f"{group}-data",
        ):
            shutil.rmtree(datadir, ignore_errors=True)


# ---------------------------------------------------------------------- c. backfill
@dataclass
class BackfillRun:
    wall_s: float  # the whole backfill_topic call (connections, claims, the loop)
    report: BackfillReport
    redis_s: float  # Redis server time of the commands the backfill sent


async def backfill_in_process(
    settings: Settings, namespace: str, jobs: int | None = None
) -> BackfillRun:
    """``jobs``: the backfill's processes (None: its default, one per CPU at most one per
    partition); Redis's command statistics count every process's commands."""
    probe = RedisStore.from_url(settings.redis_url.get_secret_value(), "rfm", namespace)
    try:
        await probe.client.config_resetstat()
        gc.collect()
        t0 = time.perf_counter()
        report = await backfill_topic(
            settings, BackfillOptions(namespace=namespace, progress=False, jobs=jobs)
        )
        wall = time.perf_counter() - t0
        stats = await probe.client.info("commandstats")
    finally:
        await probe.close()
    usec = {k.removeprefix("cmdstat_"): v["usec"] for k, v in stats.items()}
    # commands run inside scripts are counted on their own too: sum what the client sent
    sent = ("evalsha", "eval", "zrangebyscore", "script|load", "hget", "xrange", "xdel")
    return BackfillRun(wall, report, sum(usec.get(c, 0) for c in sent) / 1e6)


@dataclass
class CliRun:
    wall_s: float
    reported_s: float
    events: int
    line: str


def backfill_cli(settings: Settings, namespace: str) -> CliRun:
    env = worker_env(settings, settings.namespace, "unused")
    cmd = [sys.executable, "-m", "stream.cli", "backfill", "--into", namespace, "--no-progress"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"backfill CLI failed ({done.returncode}):\n{done.stderr[-3000:]}")
    line = done.stdout.strip().splitlines()[-1]
    m = re.search(r"backfilled ([\d,]+) events .* in ([\d.]+)s", line)
    if m is None:
        raise RuntimeError(f"unexpected backfill CLI output: {line!r}")
    return CliRun(wall, float(m.group(2)), int(m.group(1).replace(",", "")), line)


async def profile_backfill(settings: Settings, namespace: str) -> tuple[str, float, int]:
    """The backfill once under cProfile: (report text, seconds under the profiler, events).

    In one process (``jobs=1``): a parallel backfill's work happens in its children,
    which the profiler of this process would not see."""
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    report = await backfill_topic(
        settings, BackfillOptions(namespace=namespace, progress=False, jobs=1)
    )
    prof.disable()
    return format_profile(prof), time.perf_counter() - t0, report.events
