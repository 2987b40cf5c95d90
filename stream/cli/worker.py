"""``rfm-stream worker``: the stream worker (the service), after its partition-layout check."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from schemas.settings import Settings
from stream.cli.base import Subcommands, setup_logging
from stream.cli.options import add_settings_options, settings_from

if TYPE_CHECKING:
    from segments.engine import Engine
    from state.store import RedisStore

__all__ = ["add_worker", "cmd_worker", "start_checks"]


def add_worker(sub: Subcommands) -> None:
    worker = sub.add_parser("worker", help="run the stream worker (the service)")
    add_settings_options(worker)
    worker.set_defaults(func=cmd_worker)


async def start_checks(
    settings: Settings, store: RedisStore, engine: Engine, topic_partitions: int | None
) -> None:
    """The namespace's layout against the topic's partition count (when known), then the
    purchase days kept: last, because it records the rules' window, which a start refused
    for its layout must not have done (the workers still on the old rules would then be
    refused for days nothing trimmed)."""
    from state.layout import ensure_layout, recorded_layout
    from stream.live.days_kept import check_days_kept

    built = await recorded_layout(store)
    if topic_partitions is not None:
        await ensure_layout(store, settings.purchases_topic, topic_partitions)
    if built is not None:  # else nothing was ever written into it: nothing kept
        await check_days_kept(settings, store, engine, built[0])


def _check_layout(settings: Settings, engine: Engine) -> None:
    """Refuse to start on a namespace built for another partition count (state.layout),
    or with rules whose rolling windows need purchase days its customers no longer hold
    (stream.live.days_kept).

    Checked here, before faust starts, so the refusal is one line and exit code 2, not a
    crashed service. If Kafka or Redis can't answer yet (or the topic does not exist
    yet), the runtime checks again once they do.
    """
    import asyncio

    from schemas.errors import StoreUnavailable
    from state.keys import Keys
    from state.store import RedisStore
    from stream.kafka.clients import topic_partitions

    async def check() -> None:
        store = RedisStore.from_settings(settings)
        try:
            store.keys = Keys(settings.key_prefix, await store.serving(settings.namespace))
            await start_checks(settings, store, engine, await topic_partitions(settings, 5))
        except StoreUnavailable:
            return
        finally:
            await store.close()

    # quiet: an unreachable Kafka or Redis is the runtime's to report (and wait for)
    logging.disable(logging.CRITICAL)
    loop = asyncio.new_event_loop()  # not installed: faust makes and owns the worker's loop
    try:
        loop.run_until_complete(check())
    finally:
        loop.close()
        logging.disable(logging.NOTSET)


def _check_kafka(settings: Settings) -> None:
    """Refuse to start with a TLS/SASL configuration the broker refuses (stream.kafka.security).

    Here, before faust starts: faust's consumer would only log the reason and retry for
    ever. On a loop of its own (faust makes and owns the worker's).
    """
    import asyncio

    from stream.kafka.security import check_kafka

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(check_kafka(settings))
    finally:
        loop.close()


def cmd_worker(args: argparse.Namespace) -> int:
    """Run faust's worker with our Runtime as its service; returns only when it stops."""
    settings = settings_from(args)
    import faust

    from stream.live.faust_app import create_app
    from stream.live.runtime import Runtime

    runtime = Runtime(settings)  # a bad rules file stops here
    _check_kafka(settings)  # a refused TLS/SASL configuration: one line, exit 2
    _check_layout(
        settings, runtime.processor.engine
    )  # before logging is set up: a refusal is one line on stderr
    setup_logging(settings.log_level)
    app = create_app(settings, runtime)
    worker = faust.Worker(app, runtime, loglevel=settings.log_level, quiet=True)
    # faust's progress spinner, kept at log levels >= warning, sets the root logger to
    # DEBUG so it can spin on every record: aiokafka then builds a debug record per
    # produced message (~4 % of the worker's CPU at 1k events/s). No terminal here.
    worker.spinner = None
    worker.execute_from_commandline()
    return 0
