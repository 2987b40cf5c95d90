"""What the worker knows of its Redis right now: answering, down, or refusing writes (and
why), for ``/health``, ``/metrics`` and the log's one line per change."""

from __future__ import annotations

import logging
from typing import Any

from schemas.errors import StoreUnavailable
from state.refusals import REFUSALS
from stream.apply.stats import Family

__all__ = ["RedisStatus"]

log = logging.getLogger(__name__)

DOWN = "DOWN"
"""The reason of a Redis that doesn't answer (connection refused, timeout, cluster down)."""


class RedisStatus:
    """Up, or the reason it isn't: :data:`DOWN` or a refusal code (:data:`REFUSALS`).

    Set by the worker's retried steps (:meth:`failed` on each failure, :meth:`ok` on a
    success), so it changes only with what the worker's own writes meet.
    """

    def __init__(self) -> None:
        self.reason: str | None = None
        self.detail = ""
        self.refusals: dict[str, int] = dict.fromkeys(REFUSALS, 0)
        """Attempts refused, by refusal code, since the start (a counter)."""

    @property
    def up(self) -> bool:
        return self.reason is None

    def failed(self, exc: StoreUnavailable) -> None:
        """A step failed with ``exc``: log it if that is news (not on every retry)."""
        reason = getattr(exc, "reason", DOWN)
        if reason in self.refusals:
            self.refusals[reason] += 1
        if reason != self.reason:
            if reason == DOWN:
                log.error("redis is down: not consuming until it is back")
            else:
                log.error("%s: not consuming until it accepts writes again", exc)
        self.reason, self.detail = reason, str(exc)

    def ok(self) -> None:
        if self.reason is not None:
            log.warning("redis is back (was %s): consuming again", self.reason)
        self.reason, self.detail = None, ""

    def health(self) -> dict[str, Any]:
        """The ``/health`` fields: up, and if not, why (``redis_refusal`` names the code)."""
        out: dict[str, Any] = {"redis_up": self.up}
        if not self.up:
            out["redis_error"] = self.detail
            if self.reason != DOWN:
                out["redis_refusal"] = self.reason
        return out

    def metrics(self) -> dict[str, Family]:
        """name -> (type, help, samples) of the refusal metrics."""
        return {
            "rfm_redis_refusing": (
                "gauge",
                "1 while Redis refuses the worker's writes for this reason (not consuming).",
                [(f'{{reason="{r}"}}', 1 if r == self.reason else 0) for r in REFUSALS],
            ),
            "rfm_redis_refusals_total": (
                "counter",
                "Attempts Redis refused, by reason (each is retried with backoff).",
                [(f'{{reason="{r}"}}', n) for r, n in self.refusals.items()],
            ),
        }
