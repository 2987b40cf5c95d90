"""Worker subprocesses for the live benchmarks: start, watch (CPU, /health), profile, stop.

Shared by the throughput, scaling, cost, latency and decay-timeliness figures so that
every one of them measures the same real ``rfm-stream worker`` process the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.runners import ROOT, worker_env
from schemas.settings import Settings, load_settings
from stream.demo.embedded import Service, free_port, start_redis, start_tansu

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Proc:
    """One started process and where its output goes."""

    proc: subprocess.Popen[bytes]
    log: Path
    http_port: int = 0
    group: str = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def check(self) -> None:
        """Raise (with the log's tail) if the process died."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.log.name} exited ({self.proc.returncode}):\n{self.tail()}")

    def cpu_s(self) -> float:
        """User + system CPU seconds of the process so far (``/proc/<pid>/stat``)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def peak_rss_mb(self) -> float:
        """The process's peak resident memory so far (``VmHWM``), in MB; 0 once it ended."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return 0.0
        m = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        return int(m.group(1)) / 1024 if m else 0.0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for datadir in (
            Path(tempfile.gettempdir()) / f"rfm-stream-{self.group}",
            Path(tempfile.gettempdir()) / f"rfm-bench-noop-{self.group}",
            ROOT / f"{self.group}-data",
        ):
            shutil.rmtree(datadir, ignore_errors=True)


def spawn(
    settings: Settings,
    namespace: str,
    group: str,
    log: Path,
    *,
    module: str = "stream.cli",
    http: bool = False,
    extra: dict[str, str] | None = None,
    root: Path = ROOT,
) -> Proc:
    """``python -m stream.cli worker`` (or ``module``) with the benchmark's RFM_* settings.

    ``worker_env`` turns the decay timer off; ``extra`` overrides any variable; ``root`` is
    the checkout whose code runs (another one: :mod:`bench.ab_worker`).
    """
    env = worker_env(settings, namespace, group)
    port = free_port() if http else 0
    env["RFM_HTTP_PORT"] = str(port)
    env.update(extra or {})
    argv = [sys.executable, "-m", module] + (["worker"] if module == "stream.cli" else [])
    with open(log, "wb") as fh:  # the child keeps its own copy of the fd
        proc = subprocess.Popen(
            argv, env=env, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=root
        )
    return Proc(proc, log, port, group)


async def owned(proc: Proc) -> list[int] | None:
    """Partitions a worker owns according to its ``/health`` (None: not answering yet)."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http,
            http.get(f"http://127.0.0.1:{proc.http_port}/health") as resp,
        ):
            body = await resp.json()
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    # ownership, not readiness: /health is "not ready" while a worker catches up a backlog
    parts = body.get("partitions") if body.get("redis_up") else None
    return None if parts is None else [int(p) for p in parts]


async def wait_owned(procs: list[Proc], partitions: int, timeout_s: float = 60.0) -> float:
    """Wait until the workers together own every partition, each at least one, unchanged
    for 1 s (the group settled); returns the seconds waited."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    stable_since: float | None = None
    last: list[list[int] | None] = []
    while True:
        for p in procs:
            p.check()
        now = [await owned(p) for p in procs]
        full = all(x for x in now) and sorted(q for x in now for q in x or []) == list(
            range(partitions)
        )
        if full and now == last:
            if stable_since is None:
                stable_since = loop.time()
            elif loop.time() - stable_since >= 1.0:
                return loop.time() - t0
        else:
            stable_since = None
        last = now
        if loop.time() - t0 > timeout_s:
            raise RuntimeError(f"workers did not settle on {partitions} partitions: {now}")
        await asyncio.sleep(0.1)


@contextlib.contextmanager
def broker_and_redis(name: str) -> Iterator[tuple[Path, Service, Service]]:
    """A log directory, a Tansu broker and a redis-server for one benchmark run.

    Both servers are stopped on the way out, however it goes (the broker too when Redis
    fails to start: it would outlive the benchmark); the logs are removed after a run that
    finished and kept, with a line saying where, after one that failed.
    """
    logdir = Path(tempfile.mkdtemp(prefix=f"rfm-bench-{name}-"))
    try:
        with contextlib.ExitStack() as servers:
            broker = start_tansu(log_path=logdir / "tansu.log")
            servers.callback(broker.stop)
            server = start_redis()
            servers.callback(server.stop)
            yield logdir, broker, server
    except BaseException:
        print(f"{name} benchmark failed; logs kept in {logdir}", flush=True)
        raise
    shutil.rmtree(logdir, ignore_errors=True)


def fresh_settings(
    broker: Service, server: Service, name: str, partitions: int
) -> tuple[Settings, str]:
    """Settings for a benchmark's own broker and Redis, with a namespace and topics no
    earlier run used (``<name>-<suffix>``, ``purchases-<suffix>``, ...); and the suffix,
    which the benchmark's runs reuse in their own names."""
    sfx = uuid.uuid4().hex[:6]
    settings = load_settings(
        kafka_bootstrap=broker.address,
        redis_url=f"redis://{server.address}/0",
        namespace=f"{name}-{sfx}",
        purchases_topic=f"purchases-{sfx}",
        transitions_topic=f"transitions-{sfx}",
        dlq_topic=f"dlq-{sfx}",
        partitions=partitions,
    )
    return settings, sfx


# ---------------------------------------------------------------------- py-spy
def start_pyspy(pid: int, out: Path, rate: int = 100) -> subprocess.Popen[bytes] | None:
    """Attach py-spy to ``pid`` (collapsed stacks into ``out``); None if py-spy is missing."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(exe).exists():
        return None
    argv = [exe, "record", "-p", str(pid), "-r", str(rate), "-f", "raw", "-o", str(out)]
    argv += ["--nonblocking", "--full-filenames"]
    return subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    )


def stop_pyspy(spy: subprocess.Popen[bytes]) -> None:
    spy.send_signal(signal.SIGINT)
    try:
        spy.wait(30)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait(5)


def _frame(frame: str) -> str:
    """``func (path:line)`` with the path shortened to the project or the package."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rpartition(":")[0]
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif path.startswith(str(ROOT) + "/"):
        path = path[len(str(ROOT)) + 1 :]
    elif "/" in path:
        path = path.rsplit("/", 1)[1]
    # no line number: one row per function, whichever line it was on when sampled
    return f"{path}({name})" if path else name


def summarize_pyspy(raw: Path, top: int = 15) -> str:
    """Own time and cumulative time per function from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    cum: Counter[str] = Counter()
    files: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame(f) for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        files[frames[-1].split("(", 1)[0]] += n
        for f in set(frames):
            cum[f] += n
    if not total:
        return "(py-spy recorded no samples)"
    # the project's own functions, without the entry point's frames (always ~100 %)
    mine = ("stream/", "state/", "segments/", "schemas/")
    ours = Counter(
        {
            f: n
            for f, n in cum.items()
            if f.startswith(mine)
            and not f.startswith(("stream/cli/main.py", "stream/cli/worker.py"))
        }
    )

    def rows(counter: Counter[str]) -> str:
        out = [f"{'samples':>8} {'%':>6}  function"]
        out += [f"{n:8,} {100 * n / total:5.1f}%  {f}" for f, n in counter.most_common(top)]
        return "\n".join(out)

    return (
        f"Top {top} by own samples ({total:,} samples of the busy threads):\n\n{rows(own)}\n\n"
        f"Top {top} project functions by cumulative samples:\n\n{rows(ours)}\n\n"
        f"Own samples per file, top 10:\n\n{rows(Counter(dict(files.most_common(10))))}"
    )
