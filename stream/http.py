"""The worker's small HTTP server: ``/metrics`` (Prometheus text) and ``/health``.

Counters come from the processor's :class:`~stream.processor.Stats`; nothing here
reads Redis, so metrics stay available while Redis is down (that is when they matter).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from mode import Service

from stream.processor import Processor

__all__ = ["HttpServer", "render_metrics"]

log = logging.getLogger(__name__)


def render_metrics(
    processor: Processor, redis_up: bool, published: int, extra: dict[str, float] | None = None
) -> str:
    """Prometheus exposition text of the worker's counters and gauges."""
    s = processor.stats
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lines.append(f"{name}{labels} {value}")

    metric("rfm_events_total", "counter", "Events applied to state.", [("", s.events)])
    metric(
        "rfm_redelivered_skipped_total",
        "counter",
        "Messages at or below the committed offset (redelivered), skipped.",
        [("", s.duplicates_skipped)],
    )
    metric(
        "rfm_duplicate_events_total",
        "counter",
        "Events whose event_id was already applied (resends), ignored.",
        [("", s.duplicate_events)],
    )
    metric(
        "rfm_forwarded_total",
        "counter",
        "Events found off their customer's partition, forwarded.",
        [("", s.forwarded)],
    )
    metric(
        "rfm_dead_letters_total",
        "counter",
        "Messages sent to the dead-letter topic, by reason.",
        [(f'{{reason="{k}"}}', v) for k, v in sorted(s.dead_letters.items())] or [("", 0)],
    )
    metric("rfm_transitions_total", "counter", "Transitions committed.", [("", s.transitions)])
    metric("rfm_decays_total", "counter", "Time-driven transitions.", [("", s.decays)])
    metric("rfm_published_total", "counter", "Transitions published.", [("", published)])
    metric(
        "rfm_fenced_batches_total",
        "counter",
        "Batches rejected because the partition moved.",
        [("", s.fenced_batches)],
    )
    metric("rfm_commit_conflicts_total", "counter", "Retried commits.", [("", s.conflicts)])
    metric(
        "rfm_redis_up",
        "gauge",
        "1 while Redis answers; 0 while the worker waits for it (not consuming).",
        [("", 1 if redis_up else 0)],
    )
    metric(
        "rfm_owned_partitions",
        "gauge",
        "Purchases partitions this worker owns.",
        [("", len(processor.owned()))],
    )
    for name, value in (extra or {}).items():
        metric(name, "gauge", name, [("", value)])
    return "\n".join(lines) + "\n"


class HttpServer(Service):
    """aiohttp on ``port`` (0: disabled), started and stopped with the worker."""

    def __init__(
        self,
        port: int,
        metrics: Callable[[], str],
        health: Callable[[], dict[str, Any]],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.port = port
        self._metrics = metrics
        self._health = health
        self._runner: web.AppRunner | None = None

    async def on_start(self) -> None:
        if not self.port:
            return
        app = web.Application()
        app.router.add_get("/metrics", self._get_metrics)
        app.router.add_get("/health", self._get_health)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "0.0.0.0", self.port).start()
        log.info("http on :%d (/metrics, /health)", self.port)

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _get_metrics(self, _: web.Request) -> web.Response:
        return web.Response(text=self._metrics(), content_type="text/plain", charset="utf-8")

    async def _get_health(self, _: web.Request) -> web.Response:
        body = self._health()
        return web.json_response(body, status=200 if body["ok"] else 503)
