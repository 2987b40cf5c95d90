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
from segments.engine import Engine
from segments.quantiles import CutPoints, Populations
from segments.rules import build_engine, load_checked_rules
from state.store import RedisStore
from stream.processor import Processor

__all__ = ["Calibrator", "finish_namespace", "refresh"]

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
        if not self.processor.populations:
            return cuts
        scheduled = cuts is None or now_ms - cuts.at_ms >= self.settings.quantile_refresh
        if not scheduled:
            if now_ms < self._look_at:
                return cuts  # the doubling check reads every summary: every 10 s is enough
            self._look_at = now_ms + _LOOK_EVERY_MS
        engine = self.processor.engine
        new = await refresh(self.store, engine, partitions, now_ms, cuts, force=scheduled)
        if new is None:
            return await self.follow()  # not due, nobody to rank, or another worker won
        self.refreshes += 1
        await self.processor.swap(build_engine(self.settings, self.rules, new))
        return new


async def refresh(
    store: RedisStore,
    engine: Engine,
    partitions: Iterable[int],
    now_ms: int,
    current: CutPoints | None,
    force: bool = False,
) -> CutPoints | None:
    """Compute and install the next cut-point version from every partition's summaries.

    Unless ``force``d (a scheduled refresh, or ``rfm-stream recalibrate``), only if the
    population has at least doubled since ``current``. Returns the installed version,
    or None (not due, nobody to rank, or another worker installed one first).
    """
    populations = Populations(engine.schemes)
    if not populations:
        return None
    summaries = await store.summaries(partitions, [p.name for p in populations.items])
    size = max(sketch.size(s) for s in summaries.values())
    if size == 0:
        return None
    if not force and current is not None and size < 2 * current.population:
        return None
    version = (current.version if current else 0) + 1
    new = populations.cut_points(engine.schemes, summaries, now_ms, version, population=size)
    if not await store.put_cuts(version - 1, new.to_json()):
        return None
    log.info("cut points: version %d over %d customers", version, size)
    return new


async def finish_namespace(
    settings: Settings,
    store: RedisStore,
    processor: Processor,
    partitions: list[int],
    at_ms: int,
) -> None:
    """After a backfill or import: leave the namespace ranked and swept, as a live
    worker would keep it.

    Quantile schemes rank against the whole history: one cut-point version at the final
    watermark, then every customer re-ranked under it (``cause=recalibration``,
    ``mode=backfill``). Without quantile axes every customer was built under these rules
    already, so the partitions are only marked as swept (a promoted namespace is not
    re-swept by the live worker).
    """
    if processor.populations and at_ms > 0:
        doc = await store.cuts()
        current = CutPoints.from_json(doc) if doc else None
        new = await refresh(store, processor.engine, partitions, at_ms, current, force=True)
        if new is not None:
            processor.use(build_engine(settings, load_checked_rules(settings), new))
        for p in partitions:
            while not await processor.sweep(p, at_ms):
                pass
        return
    for p in partitions:
        await store.set_meta_field(p, "sweep", f"{processor.sweep_target()}|done")
