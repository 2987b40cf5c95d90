"""What the worker checks of its Redis before it consumes, and how it refuses to run.

Kept apart from the runtime (:mod:`stream.live.runtime`) so the start-up rules are in one place:
an evicting ``maxmemory-policy`` would silently drop meta, outbox and customer keys
(:func:`state.refusals.eviction_refusal`); a namespace built for another partition count
would put customers under the wrong partition (:mod:`state.layout`); a small
``hash-max-listpack-value`` only costs memory, so it is a warning.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Awaitable
from typing import TypeVar

from schemas.errors import LayoutMismatch, StoreMisconfigured
from state.connection import misconfiguration, unavailable_as_error
from state.layout import ensure_layout
from state.refusals import eviction_refusal, maxmemory_policies
from state.store import LISTPACK_VALUE, RedisStore

__all__ = [
    "check_eviction",
    "check_layout",
    "check_listpack",
    "exit_if_misconfigured",
    "exit_with",
    "fatal_if_misconfigured",
]

T = TypeVar("T")

log = logging.getLogger(__name__)


async def check_eviction(store: RedisStore, allowed: bool) -> None:
    """Refuse to start on an evicting Redis: one line, exit code 2, unless ``allowed``
    (``RFM_ALLOW_EVICTION``) says to go on."""
    async with unavailable_as_error():
        policies = await maxmemory_policies(await store.connect())
    if policies is None:
        log.warning(
            "eviction check skipped: redis refused CONFIG GET maxmemory-policy (ACL); "
            "an evicting redis would go unnoticed (grant +config|get to check it)"
        )
        return
    refusal = eviction_refusal(policies, allowed)
    if refusal is not None:
        exit_with(refusal)
    if eviction_refusal(policies, allowed=False) is not None:
        log.warning("redis evicts keys (%s); started anyway: RFM_ALLOW_EVICTION", policies)


async def check_listpack(store: RedisStore) -> None:
    listpack = await store.listpack_value()
    if listpack is None:
        log.warning(
            "listpack check skipped: redis refused CONFIG GET hash-max-listpack-value (ACL); "
            "a small value would cost ~3x the memory unnoticed (grant +config|get to check it)"
        )
        return
    if listpack < LISTPACK_VALUE:
        log.warning(
            "redis hash-max-listpack-value is %d: customer hashes will take ~3x the "
            "memory; set it to %d (redis.conf or CONFIG SET)",
            listpack,
            LISTPACK_VALUE,
        )


async def check_layout(store: RedisStore, topic: str, partitions: int) -> None:
    """The namespace was built for the topic's partition count (:mod:`state.layout`).

    ``rfm-stream worker`` checked before faust started when Kafka and Redis could
    answer; this is the backstop (topic created just now, Kafka down at that moment).
    A mismatch ends the process like the CLI does: one line, exit code 2.
    """
    try:
        await ensure_layout(store, topic, partitions)
    except LayoutMismatch as exc:
        exit_with(str(exc))


def exit_if_misconfigured(exc: BaseException) -> None:
    """Exit with one line if ``exc`` is Redis refusing us for good (:class:`StoreMisconfigured`,
    or a NOPERM met outside the store's start-up path); return otherwise."""
    if isinstance(exc, StoreMisconfigured):
        exit_with(str(exc))
    reason = misconfiguration(exc)
    if reason is not None:
        exit_with(f"redis {reason}")


async def fatal_if_misconfigured(step: Awaitable[T]) -> T:
    """Await a start-up step; Redis refusing the login, the TLS handshake or a command ends
    the process with one line (exit 2) instead of a traceback or a retry for ever."""
    try:
        return await step
    except Exception as exc:
        exit_if_misconfigured(exc)
        raise


def exit_with(reason: str) -> None:
    """End the process like the CLI does on a setting it can't run with: one line, exit 2
    (not a crashed service's traceback, and no restart that could end differently)."""
    for handler in logging.getLogger().handlers:
        handler.flush()
    print(f"rfm-stream: {reason}", file=sys.stderr, flush=True)
    os._exit(2)
