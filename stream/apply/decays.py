"""The decay step: what is due in a partition by now, fired through the one commit path.

A collaborator of :class:`~stream.apply.processor.Processor`, like
:class:`~stream.apply.sweeps.Sweeps`: under the partition lock and fencing of the
processor's :class:`~stream.apply.position.PositionGuard`, it reads the customers due by
``now`` from the schedule (:mod:`state.schedule`), advances them in time (the engine's
``advance``: recency decays, held refunds expiring) and commits them with their new due
times; customers the schedule names but Redis no longer holds leave the schedule. The
live timer and a backfill's final decays both come through here, so a decay fired by
either has the same outcome and the same transition id.
"""

from __future__ import annotations

from typing import Protocol

from state.store import Claim
from stream.apply.clock import Clock
from stream.apply.modes import Mode
from stream.apply.steps import PartitionSteps
from stream.apply.sweeps import SweepHost

__all__ = ["DecayHost", "Decays"]


class DecayHost(SweepHost, Protocol):
    """What a decay step needs of the processor besides a sweep's: its clocks and mode."""

    @property
    def clock(self) -> Clock:
        """The as-of clock of time-driven work (live: the wall clock less the grace)."""
        ...

    @property
    def wall(self) -> Clock: ...

    @property
    def mode(self) -> Mode: ...


class Decays(PartitionSteps[DecayHost]):
    """``run_due(p, now)``: every decay due in partition ``p``, in steps of
    ``RFM_DECAY_BATCH`` customers."""

    async def run_due(self, p: int, now_ms: int | None = None) -> int:
        """Fire everything due for partition ``p`` by ``now_ms`` (default: the host's
        clock, the wall clock less the grace; a backfill gives its event-time watermark,
        where no grace applies: what it reads is all there is); returns how many
        customers were handled."""
        total = 0
        while p in self.guard.claims:
            now = self.host.clock.now_ms() if now_ms is None else now_ms
            async with self.guard.lock(p):
                n = await self.guard.fenced(p, "decay step", lambda c: self._due_step(c, now))  # noqa: B023
            if n is None:
                return total
            total += n
            if n < self.settings.decay_batch:
                return total
        return total

    async def _due_step(self, claim: Claim, now: int) -> int:
        ids = await self.store.due(claim.partition, now, self.settings.decay_batch)
        if ids:
            await self._commit_due(claim, ids, now)
        return len(ids)

    async def _commit_due(self, claim: Claim, ids: list[str], now: int) -> None:
        host = self.host
        loaded = await self.store.load(claim.partition, ids)
        self.guard.check_epoch(claim, loaded.epoch)
        known = [loaded.states[c] for c in ids if c in loaded.states]
        stale = [c for c in ids if c not in loaded.states]
        outcome = await host.settle(
            claim,
            loaded.version,
            known,
            lambda: host.engine.advance(known, now),
            offset=None,
            unschedule=stale,
        )
        self.stats.decays += len(outcome.transitions)
        if host.mode == "live":  # a backfill's due times are history, not lateness
            committed = host.wall.now_ms()
            self.stats.observe_decay_delays(
                [committed - d.effective_ms for d in outcome.transitions]
            )
