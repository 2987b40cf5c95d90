"""The table manager the worker gives faust (:class:`TablelessManager`): no start-up
sleep without tables, faust's own start with one, and a guard on the faust code it
copies."""

from __future__ import annotations

import hashlib
import inspect
import time

import faust
from faust.tables import TableManager

from stream.live.faust_patches import TablelessManager


def _app(manager: type[TableManager]) -> faust.App:
    return faust.App("t", broker="kafka://localhost:1", store="memory://", TableManager=manager)


async def _start_seconds(app: faust.App) -> tuple[float, list[str]]:
    """The manager's ``on_start`` with its two steps recorded (no broker here)."""
    tables = app.tables
    steps: list[str] = []

    async def channels() -> None:
        steps.append("channels")

    async def recovery() -> None:
        steps.append("recovery")

    tables._update_channels = channels
    tables.recovery.start = recovery
    t0 = time.perf_counter()
    await tables.on_start()
    return time.perf_counter() - t0, steps


async def test_a_worker_without_tables_starts_without_faust_s_one_second_sleep() -> None:
    app = _app(TablelessManager)
    assert isinstance(app.tables, TablelessManager)
    took, steps = await _start_seconds(app)
    assert steps == ["channels", "recovery"]  # the steps after faust's sleep still run
    assert took < 0.5, took
    # faust's own manager does sleep: the comparison that makes the test mean something
    took, _ = await _start_seconds(_app(TableManager))
    assert took >= 0.9, took


async def test_with_a_table_it_is_faust_s_own_start() -> None:
    app = _app(TablelessManager)
    app.Table("counts", default=int)
    took, steps = await _start_seconds(app)
    assert steps == ["channels", "recovery"]
    assert took >= 0.9, took


def test_the_faust_code_it_copies_is_unchanged() -> None:
    """TablelessManager.on_start repeats faust 0.15.3's TableManager.on_start minus the
    sleep; a faust upgrade that changes it must be looked at."""
    src = inspect.getsource(TableManager.on_start)
    assert "await self.sleep(1.0)" in src
    digest = hashlib.sha256(src.encode()).hexdigest()
    assert digest == "365dd25fbc0e068499c89e526516c638693a2d143b6ac249f84a60f5267fec9d", digest


def test_the_worker_app_uses_it() -> None:
    from schemas.settings import load_settings
    from stream.live.faust_app import raw_app

    app, _ = raw_app(load_settings(), "rfm-test-tableless")
    assert isinstance(app.tables, TablelessManager)
