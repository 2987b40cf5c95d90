"""/health is ready only while every owned partition is caught up within the threshold."""

from __future__ import annotations

from schemas.errors import StoreUnavailable
from schemas.settings import load_settings
from state.store import Claim
from stream.live.runtime import Runtime
from tests.support.consumer_stub import StubControls


def test_health_is_not_ready_while_a_partition_lags_beyond_the_threshold() -> None:
    runtime = Runtime(load_settings(health_max_lag="100", http_port="0"))
    runtime.ready.set()
    runtime.processor.claims.update({0: Claim(0, 1, 499), 1: Claim(1, 1, -1)})
    marks = {0: 600, 1: None}
    runtime.attach(StubControls(marks.get))
    body = runtime.health()
    assert body["ok"] and body["lag"] == {"0": 100, "1": None}  # 100 behind: still ready
    marks[0] = 601
    body = runtime.health()
    assert not body["ok"] and body["lag"]["0"] == 101
    runtime.processor.guard.committed[0] = 600  # the worker applied up to the watermark
    assert runtime.health()["ok"]
    runtime.redis.failed(StoreUnavailable("redis unavailable: refused"))
    assert not runtime.health()["ok"]
