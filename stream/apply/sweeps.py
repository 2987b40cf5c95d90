"""Background re-evaluation of a partition's customers after a rules or cut-point change.

A mixin of :class:`~stream.apply.processor.Processor` (it needs its locks, fencing and commit
path): one SCAN chunk per call, under the partition lock, between live batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from schemas.settings import Settings
from segments.engine import Engine
from segments.model import CustomerState, Outcome
from state.store import Claim, RedisStore
from stream.apply.dead_letters import DeadLetters
from stream.apply.stats import Stats

__all__ = ["Sweeps"]


class Sweeps:
    """Mixin: ``sweep(p, now)`` steps; progress committed with the customers."""

    settings: Settings
    store: RedisStore
    engine: Engine
    claims: dict[int, Claim]
    stats: Stats
    _locks: dict[int, asyncio.Lock]
    _fenced: Callable[..., Awaitable[Any]]
    _commit: Callable[..., Awaitable[None]]
    letters: DeadLetters
    _check_epoch: Callable[[Claim, int | None], None]
    _summarised: Callable[
        [Sequence[CustomerState], Callable[[], Outcome]],
        tuple[Outcome, dict[str, dict[int, int]]],
    ]
    sweep_target: Callable[[], str]

    async def sweep(self, p: int, now_ms: int) -> bool:
        """One step of re-evaluating partition ``p``'s customers under the current rules
        and cut points (after a rules change or a recalibration); True once done.

        Progress lives in the partition's ``sweep`` meta field, written in the same
        atomic commit as the customers it covered: ``target|scan cursor``, the cursor
        ``done`` at the end. Rate-limited by the caller (one step per tick). Each
        customer's own stamp says whether they moved for a rules change or new cut
        points, and spares those an event or the timer re-evaluated already.
        """
        if p not in self.claims:
            return True
        async with self._locks[p]:
            done = await self._fenced(p, "sweep", lambda c: self._sweep_step(c, now_ms))
        return bool(done)

    async def _sweep_step(self, claim: Claim, now: int) -> bool:
        p, target = claim.partition, self.sweep_target()
        raw = await self.store.meta_field(p, "sweep") or ""
        was, _, cursor_text = raw.partition("|")
        if was == target and cursor_text == "done":
            return True
        cursor = int(cursor_text) if was == target else 0
        cursor, ids = await self.store.scans.scan_customers(p, cursor, self.settings.sweep_batch)
        loaded = await self.store.load(p, ids)
        self._check_epoch(claim, loaded.epoch)
        known = [loaded.states[c] for c in dict.fromkeys(ids) if c in loaded.states]
        outcome, summaries = self._summarised(known, lambda: self.engine.reevaluate(known, now))
        await self.letters.rejected(outcome.rejected)
        marker = f"{target}|{cursor or 'done'}"
        await self._commit(
            claim,
            loaded.version,
            known,
            outcome.transitions,
            offset=marker,
            summaries=summaries,
            position="sweep",
        )
        self.stats.swept += len(known)
        return cursor == 0
