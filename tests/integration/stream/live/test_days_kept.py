"""Rules whose rolling windows need purchase days the namespace's customers no longer
hold are refused at worker start (:mod:`stream.live.days_kept`): one line, exit 2, naming
the windows and the backfill-and-promote procedure, unless ``RFM_ACCEPT_SHORT_WINDOWS``.
A real Redis; the refusal through the real ``rfm-stream worker`` command (it comes before
the broker is needed, so none runs).

Each test names, in its docstring, the broken behaviour it catches.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from schemas.times import to_ms
from segments.rules import build_engine
from state.layout import WindowsNotKept, ensure_layout, recorded_days_kept
from stream.live.days_kept import check_days_kept
from tests.support.harness import ROOT, purchase
from tests.support.processor_rig import Rig, make_rig

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
T = to_ms(NOW)
DAY = 86_400_000

PYRAMID = """
[schemes.pyramid]
axes.m.quantiles = [0.5, 0.8, 0.99]
axes.m.window = "{window}"
[schemes.pyramid.segments]
vip = {{ label = "A", cells = ["4"] }}
major = {{ label = "B", cells = ["3"] }}
ordinary = {{ label = "C", cells = ["2"] }}
small = {{ label = "D", cells = ["1"] }}
"""


@pytest.fixture
async def rig(redis_url: str) -> AsyncIterator[Rig]:
    """A live namespace on the RFM rules (no window: no purchase days kept), recorded as
    its first worker start records it, with customers."""
    r = await make_rig(redis_url, T, decay_timer="false")
    await ensure_layout(r.store, r.settings.purchases_topic, 1)
    await check_days_kept(r.settings, r.store, r.processor.engine, 1)
    at = NOW - timedelta(days=3)
    await r.feed([orjson.dumps(purchase(f"c{i}", 0, at, "120")) for i in range(5)])
    yield r
    await r.close()


def _rules(tmp_path: Path, window: str) -> Path:
    path = tmp_path / f"pyramid-{window}.toml"
    path.write_text(PYRAMID.format(window=window))
    return path


async def test_the_worker_refuses_a_longer_window_in_one_line(
    rig: Rig, redis_url: str, tmp_path: Path
) -> None:
    """``rfm-stream worker`` on the pyramid over 365 days, where the customers kept no
    purchase days: exit 2, one line naming both windows and the procedure, no
    traceback. Catches a worker that starts and ranks everyone's past year at zero."""
    assert await recorded_days_kept(rig.store) == 0
    args = [sys.executable, "-m", "stream.cli", "worker", "--redis-url", redis_url]
    args += ["--namespace", rig.settings.namespace, "--rules", str(_rules(tmp_path, "365d"))]
    args += ["--kafka-bootstrap", "127.0.0.1:9"]  # never reached: refused first
    proc = await asyncio.to_thread(
        subprocess.run,
        args,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rfm-stream: "), proc.stderr
    for said in ("365d window", "no purchase days", "backfill --into NEW", "promote", "RFM_ACCEPT"):
        assert said in lines[0], lines[0]
    assert await recorded_days_kept(rig.store) == 0  # nothing recorded for refused rules


async def test_override_new_namespace_and_windows_that_dont_grow_start(
    rig: Rig, redis_url: str, tmp_path: Path
) -> None:
    """The override starts (and records the new window, so the next start on these rules
    is not refused); a shorter window starts; a namespace without customers starts on any
    window. Catches a check that refuses what it must let start, and one that records
    nothing (a restart on the same rules refused, or a longer window let in later)."""
    year = build_engine(rig.settings.model_copy(update={"rules": str(_rules(tmp_path, "365d"))}))
    quarter = build_engine(rig.settings.model_copy(update={"rules": str(_rules(tmp_path, "90d"))}))
    with pytest.raises(WindowsNotKept):
        await check_days_kept(rig.settings, rig.store, year, 1)

    accepting = rig.settings.model_copy(update={"accept_short_windows": True})
    await check_days_kept(accepting, rig.store, year, 1)
    assert await recorded_days_kept(rig.store) == 365 * DAY
    await check_days_kept(rig.settings, rig.store, year, 1)  # a restart: no growth
    await check_days_kept(rig.settings, rig.store, quarter, 1)  # shorter: days dropped
    assert await recorded_days_kept(rig.store) == 90 * DAY
    with pytest.raises(WindowsNotKept, match="kept 90d of purchase days"):
        await check_days_kept(rig.settings, rig.store, year, 1)

    empty = await make_rig(redis_url, T, decay_timer="false")  # a new (or backfill) namespace
    try:
        await ensure_layout(empty.store, empty.settings.purchases_topic, 1)
        await check_days_kept(empty.settings, empty.store, empty.processor.engine, 1)
        await check_days_kept(empty.settings, empty.store, year, 1)
        assert await recorded_days_kept(empty.store) == 365 * DAY
    finally:
        await empty.close()


async def test_a_namespace_from_before_the_record_is_refused_a_window(
    rig: Rig, tmp_path: Path
) -> None:
    """A namespace with customers whose layout record has no window (written by a release
    before the record: every existing deployment on upgrade) kept an unknown number of
    purchase days (the RFM rules before the 365-day pyramid kept none): a window is
    refused there unless accepted, not taken as kept and recorded (reviewer's finding:
    the upgrade the refusal is documented for went through, and everyone's year read 0)."""
    client = await rig.store.connect()
    await client.hdel(rig.store.keys.layout(), "days_kept_ms")  # as the older release left it
    year = build_engine(rig.settings.model_copy(update={"rules": str(_rules(tmp_path, "365d"))}))
    with pytest.raises(WindowsNotKept, match="unknown window"):
        await check_days_kept(rig.settings, rig.store, year, 1)
    assert await recorded_days_kept(rig.store) is None
    await check_days_kept(rig.settings, rig.store, rig.processor.engine, 1)  # no window: fine
    await client.hdel(rig.store.keys.layout(), "days_kept_ms")
    accepting = rig.settings.model_copy(update={"accept_short_windows": True})
    await check_days_kept(accepting, rig.store, year, 1)
    assert await recorded_days_kept(rig.store) == 365 * DAY


async def test_a_start_refused_for_its_layout_records_no_window(rig: Rig, tmp_path: Path) -> None:
    """The worker's start-up checks refuse a partition count other than the namespace's
    before they record the new rules' window: a refused start (here: shorter-window rules
    on a topic of another partition count) must leave the workers still on the longer
    window unrefused (reviewer's finding: the window was recorded first)."""
    from schemas.errors import LayoutMismatch
    from stream.cli.worker import start_checks

    year = build_engine(rig.settings.model_copy(update={"rules": str(_rules(tmp_path, "365d"))}))
    accepting = rig.settings.model_copy(update={"accept_short_windows": True})
    await check_days_kept(accepting, rig.store, year, 1)  # the namespace keeps a year
    quarter = build_engine(rig.settings.model_copy(update={"rules": str(_rules(tmp_path, "90d"))}))
    with pytest.raises(LayoutMismatch):
        await start_checks(rig.settings, rig.store, quarter, 3)  # the topic has 3, not 1
    assert await recorded_days_kept(rig.store) == 365 * DAY
    await start_checks(rig.settings, rig.store, year, 1)  # the year's workers still start
