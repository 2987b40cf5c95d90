"""``bench.procs.broker_and_redis``: a benchmark's servers never outlive it.

Every figure starts a Tansu broker and a redis-server; before this helper each figure
started them itself and a Redis that failed to start left its broker running (seen once,
in an A/B run). Real servers here, as in the benchmarks.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from bench import procs
from stream.demo.embedded import Service

pytestmark = [pytest.mark.integration]


def test_servers_stop_and_logs_go_after_a_run() -> None:
    with procs.broker_and_redis("t") as (logdir, broker, server):
        assert logdir.is_dir()
    assert broker.proc.poll() is not None and server.proc.poll() is not None
    assert not logdir.exists()


def test_a_redis_that_fails_to_start_stops_the_broker_and_keeps_the_logs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[Service] = []
    real = procs.start_tansu

    def tansu(**options: Any) -> Service:
        started.append(real(**options))
        return started[-1]

    def redis() -> Service:
        raise RuntimeError("redis-server exited with code 1 before listening")

    monkeypatch.setattr(procs, "start_tansu", tansu)
    monkeypatch.setattr(procs, "start_redis", redis)
    with pytest.raises(RuntimeError, match="before listening"), procs.broker_and_redis("t"):
        pass
    assert started and started[0].proc.poll() is not None, "the broker outlived the benchmark"
    said = re.search(r"t benchmark failed; logs kept in (\S+)", capsys.readouterr().out)
    assert said is not None
    kept = Path(said.group(1))
    assert kept.is_dir()
    shutil.rmtree(kept)
