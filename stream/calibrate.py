"""Keep a worker on its namespace's current quantile cut points, and refresh them.

Cut points are namespace-wide: one JSON document in Redis, replaced by compare-and-set,
so of several workers racing to refresh exactly one creates each version. Every worker
polls it on its timer and switches its engine when the version moves; the partitions'
sweeps (``Processor.sweep``) then re-rank every customer under the new version, with
``cause=recalibration``.

A refresh is due ``RFM_QUANTILE_REFRESH`` after the last one, or as soon as the
population has doubled since (a new deployment's first cut points come from its first
customers and would otherwise stay that crude for an hour).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from schemas.rules import RulesFile
from schemas.settings import Settings
from segments import sketch
from segments.quantiles import CutPoints
from segments.rules import build_engine
from state.store import RedisStore
from stream.processor import Processor

__all__ = ["Calibrator"]

log = logging.getLogger(__name__)

_LOOK_EVERY_MS = 10_000


class Calibrator:
    def __init__(
        self, settings: Settings, store: RedisStore, processor: Processor, rules: RulesFile
    ) -> None:
        self.settings = settings
        self.store = store
        self.processor = processor
        self.rules = rules
        self.refreshes = 0
        self._look_at = 0

    async def current(self) -> CutPoints | None:
        doc = await self.store.cuts()
        return CutPoints.from_json(doc) if doc else None

    async def follow(self) -> CutPoints | None:
        """Switch the engine to the namespace's current cut points if they moved."""
        cuts = await self.current()
        version = cuts.version if cuts else None
        if version != self.processor.engine.cut_version and cuts is not None:
            await self.processor.swap(build_engine(self.settings, self.rules, cuts))
            log.info("cut points: now at version %d", cuts.version)
        return cuts

    async def step(self, now_ms: int, partitions: Iterable[int]) -> CutPoints | None:
        """Follow the current version; refresh it if due. Returns what is in force."""
        cuts = await self.follow()
        populations = self.processor.populations
        if not populations:
            return cuts
        if cuts is not None and now_ms - cuts.at_ms < self.settings.quantile_refresh:
            if now_ms < self._look_at:
                return cuts  # the doubling check reads every summary: every 10 s is enough
            self._look_at = now_ms + _LOOK_EVERY_MS
        summaries = await self.store.summaries(partitions, [p.name for p in populations.items])
        size = max(sketch.size(s) for s in summaries.values())
        if size == 0:
            return cuts  # nobody to rank yet
        if cuts is not None and (
            now_ms - cuts.at_ms < self.settings.quantile_refresh and size < 2 * cuts.population
        ):
            return cuts
        version = (cuts.version if cuts else 0) + 1
        new = populations.cut_points(
            self.processor.engine.schemes, summaries, now_ms, version, population=size
        )
        if not await self.store.put_cuts(version - 1, new.to_json()):
            return await self.follow()  # another worker refreshed first: take theirs
        self.refreshes += 1
        log.info("cut points: refreshed to version %d over %d customers", version, size)
        await self.processor.swap(build_engine(self.settings, self.rules, new))
        return new
