"""One measured live run for the cluster benchmark: N worker processes, one Redis or many.

Everything is read from outside the workers: Redis's committed offsets (progress), the
workers' ``claimed partitions`` log lines (when the consumer group has settled),
``INFO commandstats`` of every Redis node (cost), ``/proc`` (CPU of each process and of
the machine, to say what saturates).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis

from bench.runners import ROOT, spawn_worker, worker_env
from schemas.settings import Settings
from state.store import RedisStore
from stream.demo.embedded import Service

__all__ = ["LiveRun", "ProcCpu", "run_workers"]

CLAIM_RE = re.compile(r"claimed partitions \[([0-9, ]*)\]")
TICK = os.sysconf("SC_CLK_TCK")
POLL_S = 0.05


class ProcCpu:
    """CPU seconds (user + system) of processes, and busy time of the whole machine."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.start = self._read()

    @staticmethod
    def _proc(pid: int) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime

    @staticmethod
    def _machine() -> tuple[float, float]:
        # user nice system idle iowait irq softirq steal (guest time is already in user)
        cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:9]
        ticks = [int(x) for x in cpu]
        idle = ticks[3] + ticks[4]  # idle + iowait
        return (sum(ticks) - idle) / TICK, sum(ticks) / TICK

    def _read(self) -> tuple[dict[str, float], tuple[float, float]]:
        per = {g: sum(self._proc(p) for p in pids) for g, pids in self.groups.items()}
        per["bench (this process)"] = sum(os.times()[:2])
        return per, self._machine()

    def since_start(self) -> tuple[dict[str, float], float]:
        """(CPU seconds per group, machine busy share 0..1) since construction."""
        per, (busy, total) = self._read()
        per0, (busy0, total0) = self.start
        share = (busy - busy0) / (total - total0) if total > total0 else 0.0
        return {g: per[g] - per0.get(g, 0.0) for g in per}, share


@dataclass
class LiveRun:
    kind: str  # "redis" or "cluster"
    workers: int
    total: int  # every record of the topic (the namespace is fresh)
    events: int  # records applied after the consumer group settled (the timed part)
    seconds: float  # from the settled split to every offset covered
    settle_s: float  # from spawning the workers to the settled split
    commands: dict[str, int] = field(default_factory=dict)  # calls, summed over nodes
    usec: int = 0  # Redis server time of those calls, summed over nodes
    cpu: dict[str, float] = field(default_factory=dict)  # timed window, per process group
    busy: float = 0.0  # machine CPU busy share in the timed window

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def _claims(log: Path) -> set[int] | None:
    found = CLAIM_RE.findall(log.read_text(errors="replace")) if log.exists() else []
    return {int(p) for p in found[-1].split(",") if p.strip()} if found else None


def _split(logs: list[Path], partitions: int) -> bool:
    """Every worker owns something, together all partitions, none twice."""
    owned = [_claims(log) for log in logs]
    if any(not o for o in owned):
        return False
    sets = [o for o in owned if o]
    return sum(map(len, sets)) == partitions and set().union(*sets) == set(range(partitions))


async def _stats(nodes: list[Service], reset: bool) -> dict[str, tuple[int, int]]:
    """``INFO commandstats`` as command -> (calls, usec), summed over ``nodes`` (each
    asked directly); or reset them."""
    out: dict[str, tuple[int, int]] = {}
    for node in nodes:
        client = aioredis.Redis(host="127.0.0.1", port=node.port, decode_responses=True)
        try:
            if reset:
                await client.config_resetstat()
                continue
            for name, st in (await client.info("commandstats")).items():
                cmd = name.removeprefix("cmdstat_")
                calls, usec = out.get(cmd, (0, 0))
                out[cmd] = (calls + int(st["calls"]), usec + int(st["usec"]))
        finally:
            await client.aclose()
    return out


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def run_workers(
    settings: Settings,
    kind: str,
    nodes: list[Service],
    broker: Service,
    workers: int,
    namespace: str,
    last: dict[int, int],
    logdir: Path,
) -> LiveRun:
    """``workers`` processes in a fresh group and namespace over the pre-filled topic.

    Timed from the moment the group has settled (every worker holds its share) to the
    moment Redis's committed offsets cover every record; events applied while the group
    was still forming are left out of the rate (they are in the per-event cost).
    """
    group = f"bench-{namespace}"
    env = worker_env(settings, namespace, group)
    env["RFM_LOG_LEVEL"] = "info"  # the claim lines tell when the group has settled
    store = RedisStore.from_url(settings.redis_url.get_secret_value(), "rfm", namespace)
    partitions = len(last)
    total = sum(o + 1 for o in last.values())
    logs = [logdir / f"{namespace}-w{i}.log" for i in range(workers)]
    await _stats(nodes, reset=True)
    polls = 0
    t0 = time.perf_counter()
    procs = [spawn_worker(env, log) for log in logs]
    try:
        deadline = time.monotonic() + 900
        t_split = None
        cpu: ProcCpu | None = None
        covered_at_split = 0
        while True:
            committed = await store.committed_offsets(last)
            polls += 1
            now = time.perf_counter()
            if t_split is None and _split(logs, partitions):
                t_split = now
                covered_at_split = sum(o + 1 for o in committed.values() if o >= 0)
                groups = {
                    "workers": [p.pid for p in procs],
                    "redis": [n.proc.pid for n in nodes],
                    "broker": [broker.proc.pid],
                }
                cpu = ProcCpu(groups)
            if all(committed[p] >= o for p, o in last.items()):
                break
            for proc, log in zip(procs, logs, strict=True):
                if proc.poll() is not None:
                    tail = log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"worker exited ({proc.returncode}):\n{tail}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers did not catch up in 900 s: {committed} < {last}")
            await asyncio.sleep(POLL_S)
        if t_split is None or cpu is None:
            raise RuntimeError("the workers finished before the group settled: more --events")
        used, busy = cpu.since_start()
        stats = await _stats(nodes, reset=False)
        for ours in ("info", "config|resetstat", "ping"):
            stats.pop(ours, None)
        # this process's progress polls (one HGET per partition) are not the workers' cost
        hget_calls, hget_usec = stats.get("hget", (0, 0))
        mine = min(hget_calls, polls * partitions)
        if hget_calls:
            stats["hget"] = (hget_calls - mine, hget_usec - hget_usec * mine // hget_calls)
        calls = {c: n for c, (n, _) in stats.items() if n}
        usec = sum(u for _, u in stats.values())
        return LiveRun(
            kind,
            workers,
            total,
            total - covered_at_split,
            now - t_split,
            t_split - t0,
            calls,
            usec,
            used,
            busy,
        )
    finally:
        await store.close()
        _stop(procs)
        shutil.rmtree(Path(tempfile.gettempdir()) / f"rfm-stream-{group}", ignore_errors=True)
        shutil.rmtree(ROOT / f"{group}-data", ignore_errors=True)
