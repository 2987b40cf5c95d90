"""Retry with backoff, for failures the type says are retriable."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

__all__ = ["with_backoff"]

log = logging.getLogger(__name__)


async def with_backoff(
    what: str, fn: Callable[[], Awaitable[None]], retriable: tuple[type[BaseException], ...]
) -> None:
    """Run ``fn`` until it succeeds, sleeping 0.1 s → 5 s between retriable failures."""
    delay = 0.1
    while True:
        try:
            await fn()
        except retriable as exc:
            log.warning("%s failed (%s); retrying in %.1fs", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        else:
            return
