"""Back-pressure from the outbox: a partition whose transitions aren't being published
stops being consumed, instead of filling Redis until it runs out of memory.

The worker commits a batch's transitions to the partition's outbox (Redis) and the relay
publishes them. When publishing fails (the topic refuses writes, ACLs, the broker away)
or can't keep up, the outbox grows. :class:`OutboxWatch` reads every owned partition's
outbox length on a timer, shows it (``rfm_outbox_length``, ``/health``) and pauses the
partition's consumption while its outbox is over ``RFM_OUTBOX_MAX``; it resumes by
itself once the outbox is down to half of that (:class:`PausePolicy`: the gap keeps a
partition at the bound from pausing and resuming on every check).

Pausing is the consumer's own pause (faust's ``pause_partitions``: the partition is
left out of the fetches handed to the worker): the group membership, the assignment and
the consumer's position are untouched, so there is no rebalance and nothing to re-read.
What was already fetched is still applied, so the outbox can pass the bound by up to a
fetch and the worker's backlog; it is checked every :data:`CHECK_INTERVAL_S`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from state.store import RedisStore
from stream.apply.relay import OutboxRelay
from stream.apply.stats import Family

__all__ = [
    "CHECK_INTERVAL_S",
    "Flow",
    "OutboxWatch",
    "PausePolicy",
    "dead_letter_metrics",
    "publishing_gauges",
    "publishing_health",
]

log = logging.getLogger(__name__)

CHECK_INTERVAL_S = 0.25
"""How often the outbox lengths are read (one XLEN per owned partition)."""


@dataclass(frozen=True, slots=True)
class PausePolicy:
    """When a partition's consumption should be paused, from its outbox length."""

    pause_above: int

    @property
    def resume_at(self) -> int:
        return self.pause_above // 2

    def paused(self, length: int, paused_now: bool) -> bool:
        """Paused over the bound; once paused, until down to :attr:`resume_at`."""
        return length > self.pause_above or (paused_now and length > self.resume_at)


class Flow(Protocol):
    """Pause and resume the consumption of purchases partitions (the consumer's side)."""

    def paused(self) -> set[int]: ...

    def pause(self, partitions: set[int]) -> None: ...

    def resume(self, partitions: set[int]) -> None: ...


class OutboxWatch:
    """Outbox lengths of the owned partitions, and the pauses they call for."""

    def __init__(
        self,
        store: RedisStore,
        owned: Callable[[], Iterable[int]],
        policy: PausePolicy,
        flow: Flow | None = None,
    ) -> None:
        self.store = store
        self.owned = owned
        self.policy = policy
        self.flow = flow
        """The consumer's pause and resume (given by :meth:`use_flow` once it exists)."""
        self.lengths: dict[int, int] = {}
        """Each owned partition's outbox length at the last check."""

    def use_flow(self, flow: Flow) -> None:
        """Pause and resume with ``flow`` from now on: the consumer's, which the live worker
        only has once faust's app exists (after this watch is made)."""
        self.flow = flow

    def paused(self) -> set[int]:
        """Owned partitions whose consumption is paused now."""
        return self.flow.paused() & set(self.owned()) if self.flow is not None else set()

    async def step(self) -> None:
        """Read the outbox lengths; pause and resume partitions as they call for."""
        owned = sorted(set(self.owned()))
        lengths = {p: await self.store.outbox_size(p) for p in owned}
        self.lengths = lengths
        if self.flow is None:
            return
        now = self.flow.paused() & set(owned)
        want = {p for p in owned if self.policy.paused(lengths[p], p in now)}
        if pause := want - now:
            self.flow.pause(pause)
            log.warning(
                "outbox over %d unpublished transitions: not consuming partition(s) %s "
                "until it is down to %d (%s)",
                self.policy.pause_above,
                sorted(pause),
                self.policy.resume_at,
                {p: lengths[p] for p in sorted(pause)},
            )
        if resume := now - want:
            self.flow.resume(resume)
            log.warning("outbox drained: consuming partition(s) %s again", sorted(resume))


def publishing_health(
    watch: OutboxWatch, relay: OutboxRelay, dlq_failure: str | None, max_outbox: int
) -> tuple[bool, dict[str, Any]]:
    """``/health``'s publishing part: ready unless an outbox is over ``max_outbox`` or
    dead letters can't be published (their partition stands still meanwhile).

    A partition whose publishing fails is named with the error, but is not by itself a
    reason to be unready: a broker restart fails every drain for a few seconds.
    """
    over = {p: n for p, n in watch.lengths.items() if n > max_outbox}
    body = {
        "outbox": {str(p): n for p, n in sorted(watch.lengths.items())},
        "max_outbox": max_outbox,
        "paused": sorted(watch.paused()),
        "publish_errors": {str(p): f.error for p, f in sorted(relay.failing.items())},
        "dead_letter_error": dlq_failure,
    }
    return not over and dlq_failure is None, body


def publishing_gauges(
    watch: OutboxWatch, relay: OutboxRelay, owned: Iterable[int]
) -> dict[str, dict[int, float]]:
    """``/metrics``' per-partition gauges of publishing: outbox length, paused, failing."""
    paused, failing, mine = watch.paused(), relay.failing, list(owned)
    return {
        "rfm_outbox_length": {p: float(n) for p, n in watch.lengths.items()},
        "rfm_consumption_paused": {p: float(p in paused) for p in mine},
        "rfm_publish_failing": {p: float(p in failing) for p in mine},
    }


def dead_letter_metrics(dlq_failure: str | None, unpublished: int) -> dict[str, Family]:
    """Dead-letter publishing: failing now, and letters the broker refused outright."""
    return {
        "rfm_dead_letters_failing": (
            "gauge",
            "1 while dead letters can't be published (their partition waits, retrying; "
            "/health says why).",
            [("", int(dlq_failure is not None))],
        ),
        "rfm_dead_letters_unpublished_total": (
            "counter",
            "Dead letters the broker refused even in their minimal form (logged whole at "
            "ERROR instead).",
            [("", unpublished)],
        ),
    }
