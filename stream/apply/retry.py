"""Retry with backoff, for failures the type says are retriable; the one backoff schedule."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

__all__ = ["backoff_delay", "with_backoff"]

log = logging.getLogger(__name__)

FIRST_DELAY_S = 0.1
MAX_DELAY_S = 5.0


def backoff_delay(failures: int) -> float:
    """Seconds to wait after the ``failures``-th failure in a row: 0.1 s doubling to 5 s."""
    doublings: int = 2 ** max(0, min(failures - 1, 16))
    return min(FIRST_DELAY_S * doublings, MAX_DELAY_S)


async def with_backoff(
    what: str, fn: Callable[[], Awaitable[None]], retriable: tuple[type[BaseException], ...]
) -> None:
    """Run ``fn`` until it succeeds, sleeping :func:`backoff_delay` between retriable
    failures."""
    failures = 0
    while True:
        try:
            await fn()
        except retriable as exc:
            failures += 1
            delay = backoff_delay(failures)
            log.warning("%s failed (%s); retrying in %.1fs", what, exc, delay)
            await asyncio.sleep(delay)
        else:
            return
