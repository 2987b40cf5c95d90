"""Keep a worker on its namespace's current quantile cut points, and refresh them.

Cut points are namespace-wide: one JSON document in Redis, replaced by compare-and-set,
so of several workers racing to refresh exactly one creates each version. Every worker
polls it on its timer and switches its engine when the version moves; the partitions'
sweeps (``Processor.sweep``) then re-rank every customer under the new version, with
``cause=recalibration``.

Before a worker classifies anyone, the version in force must have been made for its
rules' quantile axes: if not (a rules change), :meth:`Calibrator.prepare` computes the
next one from all customers first (:mod:`stream.apply.rules_change`). No refresh reads
the new rules' summaries before the rules-change sweep has filled them.

A refresh is due ``RFM_QUANTILE_REFRESH`` after the last one, or as soon as the
population has doubled since (a new deployment's first cut points come from its first
customers and would otherwise stay that crude for an hour).

A version also carries the base's BG/NBD model (``segments.value``) when a scheme reads
it (the ``p`` axis, or ``value_figures``): refitted with every refresh on a sample of
``RFM_MODEL_SAMPLE`` customers. The sample is the first customers of each partition's
SCAN order, i.e. in Redis's hash-table order, which has nothing to do with who the
customers are or when they bought. A fit that cannot say anything (too few repeat
buyers) keeps the model in force, as does one without an interior maximum unless no
proper estimate exists yet (``segments.value.fit_base``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable

from schemas.rules import RulesFile
from schemas.settings import Settings
from segments import sketch
from segments.cut_points import CutPoints
from segments.engine import Engine
from segments.model import CustomerState
from segments.quantiles import Populations
from segments.rules import build_engine, load_checked_rules
from segments.value import ValueModel, fit_base
from state.store import RedisStore
from stream.apply.modes import SWEEP
from stream.apply.processor import Processor
from stream.apply.rules_change import (
    SweepUnfinished,
    ensure_cut_points,
    needs_pass,
    summaries_complete,
)

__all__ = [
    "Calibrator",
    "calibrated",
    "finish_namespace",
    "finished",
    "mark_swept",
    "needs_sweep",
    "rank_namespace",
    "refit",
    "refresh",
    "sample_states",
    "sweep_partitions",
]

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
        self._foreign: int | None = None
        """The last version seen that was made for other rules (warned about once)."""

    async def current(self) -> CutPoints | None:
        doc = await self.store.cuts()
        return CutPoints.from_json(doc) if doc else None

    async def prepare(self, partitions: Iterable[int]) -> CutPoints | None:
        """Before classifying anyone: make sure the current version was made for these
        rules' quantile axes (computing it from every customer if not), and use it.

        The version :func:`ensure_cut_points` returns is the one used, not whatever the
        store holds a moment later: in a rolling deploy a worker on the old rules may
        install its scheduled refresh in between, and :meth:`follow` would refuse that
        one (made for other axes) and leave the engine on thresholds made for other
        rules, which the rules-change sweep would then rank everyone with."""
        engine, clock = self.processor.engine, self.processor.clock
        cuts = await ensure_cut_points(self.store, engine, partitions, clock.now_ms)
        if cuts is None:
            return await self.follow()
        await self.processor.swap(build_engine(self.settings, self.rules, cuts))
        log.info("cut points: now at version %d", cuts.version)
        return cuts

    async def follow(self) -> CutPoints | None:
        """Switch the engine to the namespace's current cut points if they moved; returns
        the current version.

        A version not made for these rules' quantile axes is not followed: a worker on
        another rules file made it (a rolling deploy, or an operator's ``recalibrate``
        with other rules), and its thresholds would misrank ours. The engine keeps what
        :meth:`prepare` gave it; our next refresh replaces that version. Not recomputed
        here from every customer: two rules files sharing a namespace would take turns
        walking it on every tick."""
        cuts = await self.current()
        if cuts is not None and needs_pass(self.processor.engine, cuts):
            if cuts.version != self._foreign:
                self._foreign = cuts.version
                log.warning(
                    "cut points: version %d was made for other rules (another rules file "
                    "shares this namespace); keeping version %s until our next refresh",
                    cuts.version,
                    self.processor.engine.cut_version,
                )
            return cuts
        version = cuts.version if cuts else None
        if version != self.processor.engine.cut_version and cuts is not None:
            await self.processor.swap(build_engine(self.settings, self.rules, cuts))
            log.info("cut points: now at version %d", cuts.version)
        return cuts

    async def step(self, now_ms: int, partitions: Iterable[int]) -> CutPoints | None:
        """Follow the current version; refresh it if due (not while a rules-change sweep
        is filling the summaries). Returns what is in force."""
        parts = list(partitions)
        cuts = await self.follow()
        if not calibrated(self.processor.engine):
            return cuts
        scheduled = cuts is None or now_ms - cuts.at_ms >= self.settings.quantile_refresh
        if not scheduled:
            if now_ms < self._look_at:
                return cuts  # the doubling check reads every summary: every 10 s is enough
            self._look_at = now_ms + _LOOK_EVERY_MS
        engine = self.processor.engine
        if not await summaries_complete(
            self.store, engine.rules_version, parts, engine.summary_since
        ):
            return cuts  # partial: the cuts would come from those re-evaluated so far
        new = await refresh(
            self.store,
            engine,
            parts,
            now_ms,
            cuts,
            force=scheduled,
            sample=self.settings.model_sample,
        )
        if new is None:
            return await self.follow()  # not due, nobody to rank, or another worker won
        self.refreshes += 1
        await self.processor.swap(build_engine(self.settings, self.rules, new))
        return new


def calibrated(engine: Engine) -> bool:
    """Does a cut-point version mean anything to ``engine`` (quantiles or the model)?"""
    return bool(Populations.of(engine)) or engine.reads_model


async def _population(
    store: RedisStore, engine: Engine, populations: Populations, parts: list[int], sample: int
) -> tuple[int, dict[str, dict[int, int]]]:
    """(customers, summaries): from the quantile summaries if there are any, else from
    the tallied segment sizes (the largest scheme's total). If no scheme ranks anyone
    yet (every one waits for the model), customers are counted by SCAN, up to
    ``sample``: only until the first model exists."""
    if populations:
        summaries = await store.tallies.summaries(parts, [p.name for p in populations.items])
        return max(sketch.size(s) for s in summaries.values()), summaries
    counts = await store.tallies.segment_counts(parts)
    size = max((sum(c.values()) for c in counts.values()), default=0)
    if size == 0 and engine.reads_model:
        size = sum(len(ids) for ids in (await _sample_ids(store, parts, sample)).values())
    return size, {}


async def _sample_ids(store: RedisStore, parts: list[int], limit: int) -> dict[int, list[str]]:
    """About ``limit`` customer ids, an even share from each partition, in SCAN order
    (SCAN may return a key twice: each is kept once)."""
    share = -(-limit // max(len(parts), 1))
    out: dict[int, list[str]] = {}
    for p in parts:
        ids: dict[str, None] = {}
        cursor = 0
        while len(ids) < share:
            cursor, found = await store.scans.scan_customers(p, cursor, min(1000, share - len(ids)))
            ids.update(dict.fromkeys(found))
            if cursor == 0:
                break
        out[p] = list(ids)[:share]
    return out


async def sample_states(
    store: RedisStore, partitions: Iterable[int], limit: int
) -> list[CustomerState]:
    """About ``limit`` customers, an even share from each partition, in SCAN order."""
    out: list[CustomerState] = []
    for p, ids in (await _sample_ids(store, list(partitions), limit)).items():
        for i in range(0, len(ids), 1000):
            out += (await store.load(p, ids[i : i + 1000])).states.values()
    return out


async def refit(
    store: RedisStore,
    partitions: Iterable[int],
    now_ms: int,
    sample: int,
    current: ValueModel | None,
) -> ValueModel | None:
    """The base's model fitted now on a sample, or ``current`` if the sample can't do
    better (off the event loop: a fit takes a while)."""
    states = await sample_states(store, partitions, sample)
    model = await asyncio.to_thread(fit_base, states, now_ms, current)
    if model is None or model is current:
        log.info("model of the base: no better fit from %d sampled customers", len(states))
    else:
        how = "" if model.converged else " (a limit: no interior maximum)"
        log.info("model of the base: %s over %d customers%s", model.params, model.customers, how)
    return model


async def refresh(
    store: RedisStore,
    engine: Engine,
    partitions: Iterable[int],
    now_ms: int,
    current: CutPoints | None,
    force: bool = False,
    sample: int = 20_000,
) -> CutPoints | None:
    """Compute and install the next cut-point version from every partition's summaries
    (and, if a scheme reads it, a refit of the base's model on ``sample`` customers).

    Unless ``force``d (a scheduled refresh, or ``rfm-stream recalibrate``), only if the
    population has at least doubled since ``current``. Returns the installed version,
    or None (not due, nobody to rank, or another worker installed one first).
    """
    populations = Populations.of(engine)
    if not populations and not engine.reads_model:
        return None
    parts = list(partitions)
    size, summaries = await _population(store, engine, populations, parts, sample)
    if size == 0:
        return None
    if not force and current is not None and size < 2 * current.population:
        return None
    version = (current.version if current else 0) + 1
    new = populations.cut_points(engine.schemes, summaries, now_ms, version, population=size)
    new = dataclasses.replace(new, era=current.era if current else None)  # same summaries
    if engine.reads_model:
        model = await refit(store, parts, now_ms, sample, current.model if current else None)
        new = dataclasses.replace(new, model=model)
    if not await store.put_cuts(version - 1, new.to_json()):
        return None
    log.info("cut points: version %d over %d customers", version, size)
    return new


async def recalibrate(
    store: RedisStore,
    engine: Engine,
    partitions: Iterable[int],
    now_ms: int,
    sample: int = 20_000,
    attempts: int = 5,
) -> CutPoints | None:
    """``rfm-stream recalibrate``: install a new version now, over the current one.

    A running worker may install a version of its own (a scheduled refresh) between our
    read of the current one and our compare-and-set: then ours is refused. That is a race,
    not a reason to fail the operator's command: read the new current version and try
    again (``attempts`` times). None: nothing to rank, or lost every time. Refused
    (:class:`SweepUnfinished`) while a rules-change sweep is filling the summaries.
    """
    parts = list(partitions)
    if not await summaries_complete(store, engine.rules_version, parts, engine.summary_since):
        raise SweepUnfinished(
            "cannot recalibrate yet: the workers are still re-evaluating customers under "
            "these rules, so the summaries hold only some of them; try again once the "
            "sweep is done"
        )
    for _ in range(attempts):
        doc = await store.cuts()
        current = CutPoints.from_json(doc) if doc else None
        new = await refresh(store, engine, parts, now_ms, current, force=True, sample=sample)
        if new is not None:
            return new
        if doc == await store.cuts():
            return None  # not a lost race: nothing to rank
    return None


async def _sweep_all(processor: Processor, p: int, at_ms: int) -> None:
    while not await processor.sweep(p, at_ms):
        pass


def needs_sweep(processor: Processor, at_ms: int) -> bool:
    """Does finishing a namespace rank it and re-sweep it (quantile schemes, something
    applied), or only mark its partitions swept?"""
    return calibrated(processor.engine) and at_ms > 0


async def rank_namespace(
    settings: Settings, store: RedisStore, processor: Processor, partitions: list[int], at_ms: int
) -> CutPoints | None:
    """One cut-point version at ``at_ms`` from every partition's summaries, in force in
    ``processor`` from now on; returns it (None: none was installed)."""
    doc = await store.cuts()
    current = CutPoints.from_json(doc) if doc else None
    new = await refresh(
        store,
        processor.engine,
        partitions,
        at_ms,
        current,
        force=True,
        sample=settings.model_sample,
    )
    if new is not None:
        processor.use(build_engine(settings, load_checked_rules(settings), new))
    return new


async def sweep_partitions(processor: Processor, partitions: list[int], at_ms: int) -> None:
    """Re-rank every customer of ``partitions`` under the processor's cut points."""
    # partitions concurrently: one's Redis round trips overlap another's CPU
    await asyncio.gather(*(_sweep_all(processor, p, at_ms) for p in partitions))


async def finished(store: RedisStore, processor: Processor, partitions: list[int]) -> bool:
    """Did an earlier run finish the namespace: every partition swept under the rules in
    force and the cut points stored now? A run that died after applying its records but
    before ranking (or during the sweep) did not, and the next run must finish it even
    if it has no records left to apply."""
    doc = await store.cuts()
    cut = CutPoints.from_json(doc).version if doc else 0
    done = f"{processor.engine.rules_version}/{cut}|done"
    return all([await store.meta_field(p, SWEEP) == done for p in partitions])


async def mark_swept(store: RedisStore, processor: Processor, partitions: list[int]) -> None:
    """Without quantile axes every customer was built under these rules already: mark the
    partitions swept (a promoted namespace is not re-swept by the live worker)."""
    for p in partitions:
        await store.set_meta_field(p, SWEEP, f"{processor.sweep_target()}|done")


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
    re-swept by the live worker). A parallel backfill runs the same steps, its children
    sweeping their own partitions (:mod:`stream.backfill.jobs`).
    """
    if needs_sweep(processor, at_ms):
        await rank_namespace(settings, store, processor, partitions, at_ms)
        await sweep_partitions(processor, partitions, at_ms)
        return
    await mark_swept(store, processor, partitions)
