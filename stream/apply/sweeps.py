"""Background re-evaluation of a partition's customers after a rules or cut-point change.

A collaborator of :class:`~stream.apply.processor.Processor`: it runs one SCAN chunk per
call, under the partition lock and fencing of the processor's
:class:`~stream.apply.position.PositionGuard`, and commits through the processor's commit
path (:class:`SweepHost`), between live batches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from segments.engine import Engine
from segments.model import CustomerState, Outcome
from state.store import Claim
from stream.apply.modes import SWEEP, Position
from stream.apply.steps import PartitionSteps

__all__ = ["SweepHost", "Sweeps"]


class SweepHost(Protocol):
    """What a sweep needs of the processor: its current rules and the one way a change
    reaches Redis (figures, rejects, then states, due times, outbox and position in one
    fenced write)."""

    @property
    def engine(self) -> Engine: ...

    def sweep_target(self) -> str:
        """What every customer of a partition must have been re-evaluated under."""
        ...

    async def settle(
        self,
        claim: Claim,
        version: int,
        states: list[CustomerState],
        change: Callable[[], Outcome],
        offset: int | str | None,
        unschedule: Sequence[str] = (),
        position: Position | None = None,
    ) -> Outcome:
        """Run ``change`` on ``states``, dead-letter its rejects and commit it all, with
        ``offset`` at ``position``; returns its outcome."""
        ...


class Sweeps(PartitionSteps[SweepHost]):
    """``sweep(p, now)`` steps; progress committed with the customers."""

    async def sweep(self, p: int, now_ms: int) -> bool:
        """One step of re-evaluating partition ``p``'s customers under the current rules
        and cut points (after a rules change or a recalibration); True once done.

        ``now_ms`` is the as-of time customers are caught up and re-classified at, and
        their cursor moves to: the live timer gives the processor's clock, the wall clock
        less ``RFM_DECAY_GRACE``, so a sweep never fires a decay an upload still within the
        grace could undo (issue #20).

        Progress lives in the partition's ``sweep`` meta field, written in the same
        atomic commit as the customers it covered: ``target|scan cursor``, the cursor
        ``done`` at the end. Rate-limited by the caller (one step per tick). Each
        customer's own stamp says whether they moved for a rules change or new cut
        points, and spares those an event or the timer re-evaluated already.
        """
        if p not in self.guard.claims:
            return True
        async with self.guard.lock(p):
            done = await self.guard.fenced(p, "sweep", lambda c: self._sweep_step(c, now_ms))
        return bool(done)

    async def _sweep_step(self, claim: Claim, now: int) -> bool:
        host = self.host
        p, target = claim.partition, host.sweep_target()
        raw = await self.store.meta_field(p, SWEEP) or ""
        was, _, cursor_text = raw.partition("|")
        if was == target and cursor_text == "done":
            return True
        cursor = int(cursor_text) if was == target else 0
        cursor, ids = await self.store.scans.scan_customers(p, cursor, self.settings.sweep_batch)
        loaded = await self.store.load(p, ids)
        self.guard.check_epoch(claim, loaded.epoch)
        known = [loaded.states[c] for c in dict.fromkeys(ids) if c in loaded.states]
        await host.settle(
            claim,
            loaded.version,
            known,
            lambda: host.engine.reevaluate(known, now),
            offset=f"{target}|{cursor or 'done'}",
            position=SWEEP,
        )
        self.stats.swept += len(known)
        return cursor == 0
