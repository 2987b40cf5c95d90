"""A rules change's first cut points, computed before anyone is classified under them.

When the rules in force rank by quantile axes the namespace's cut-point version was not
made for (:meth:`segments.cut_points.CutPoints.made_for`: an axis added, its quantiles or
window changed, or a version from before the record), the version in force would rank
those axes with another population's thresholds, or nobody. Its summaries can't help
either: they are kept per rules version and start empty (:mod:`segments.quantiles`). So
the next version is computed from an exact read-only pass over every customer's state
(:func:`exact_cut_points`, which the dry run ``rules diff`` runs too) and installed by
compare-and-set, and only then does the worker classify anyone: the runtime runs this
before it consumes (:meth:`stream.apply.calibrate.Calibrator.prepare`).

Several workers starting at once: one takes the namespace's lease
(:class:`state.pass_lock.PassLease`) and walks, the others wait for the version to appear,
logging progress; if the lease goes away with no such version (its holder crashed, or
found nobody to rank) the next one takes it. The compare-and-set, not the lease, makes
exactly one version.

Until every partition's rules-change sweep has finished, the new rules' incremental
summaries hold only the customers re-evaluated so far: no refresh may read them
(:func:`summaries_complete`).

Every version installed here begins an **era** of the rules' summaries
(:class:`segments.cut_points.Era`): rules back in force after others (a rollback) must not
count their customers into summaries that still hold them from the first time. When the
version in force was made for these rules' axes but its era is another rules version's
(rules changed without touching a quantile axis, or a document from before eras), no
walk is needed: the same thresholds are installed again as the next version, beginning
the era (:func:`_begin_era`). Whoever installs the version deletes the previous era's
summaries (:func:`state.retired_summaries.drop_summaries`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Iterable

from schemas.errors import RfmStreamError
from segments.cut_points import CutPoints
from segments.engine import Engine
from segments.quantiles import ExactSummaries, Populations
from state.pass_lock import PassLease
from state.retired_summaries import drop_summaries
from state.store import RedisStore
from state.walk import walk_states
from stream.apply.modes import SWEEP

__all__ = [
    "SweepUnfinished",
    "ensure_cut_points",
    "exact_cut_points",
    "needs_era",
    "needs_pass",
    "summaries_complete",
]

log = logging.getLogger(__name__)


class SweepUnfinished(RfmStreamError):
    """A refresh was asked for while the summaries hold only some customers."""


CHUNK = 1000
"""Customers per SCAN chunk and load of the pass."""

_POLL_S = 0.5
_SAY_EVERY_S = 10.0


def needs_pass(engine: Engine, cuts: CutPoints | None) -> bool:
    """Does ``engine`` rank by quantile axes that ``cuts`` holds no thresholds made for?"""
    if not Populations(engine.schemes, engine.rules_version):
        return False
    return cuts is None or not cuts.made_for(engine.schemes)


def needs_era(engine: Engine, cuts: CutPoints | None) -> bool:
    """Must a version be installed to begin an era of ``engine``'s summaries? When it
    counts customers into summaries and ``cuts`` records no era of its rules (there is
    no version yet: the first refresh's is the unnamed generation, nothing to confuse)."""
    if cuts is None or not Populations(engine.schemes, engine.rules_version):
        return False
    return cuts.since_for(engine.rules_version) is None


async def exact_cut_points(
    store: RedisStore,
    engine: Engine,
    partitions: Iterable[int],
    asof_ms: int,
    current: CutPoints | None,
    on_chunk: Callable[[int], object] | None = None,
) -> CutPoints | None:
    """The version after ``current`` for ``engine``'s quantile axes, from every
    customer's state as re-evaluating it under ``engine`` at ``asof_ms`` leaves it (what
    the rules-change sweep then commits: due refunds applied, windows aged); writes
    nothing. Carries ``current``'s model of the base (a refit reads a sample and is the
    next refresh's). None: nobody to rank (no customer with an order holding money).

    ``on_chunk`` is told how many customers were just read (progress, a lease renewal).
    """
    exact = ExactSummaries(Populations(engine.schemes, engine.rules_version))
    async for states in walk_states(store, partitions, CHUNK):
        engine.reevaluate(states, asof_ms)  # decoded copies: nothing goes back
        exact.add(states)
        if on_chunk is not None:
            done = on_chunk(len(states))
            if asyncio.iscoroutine(done):
                await done
    if exact.customers == 0:
        return None
    version = (current.version if current else 0) + 1
    return exact.cut_points(engine.schemes, asof_ms, version, current.model if current else None)


async def _walk_and_install(
    store: RedisStore,
    engine: Engine,
    parts: list[int],
    asof_ms: int,
    current: CutPoints | None,
    lease: PassLease,
) -> CutPoints | None:
    read = 0

    async def progress(n: int) -> None:
        nonlocal read
        read += n
        if read // 10_000 != (read - n) // 10_000:
            log.info("rules change: %d customers read for the new cut points", read)
        await lease.renew()

    new = await exact_cut_points(store, engine, parts, asof_ms, current, progress)
    if new is None:
        log.info("rules change: nobody to rank yet, no cut points to compute")
        return None
    if not await _install(store, engine, parts, current, new):
        return None
    log.info(
        "rules change: cut points version %d computed from all %d customers",
        new.version,
        new.population,
    )
    return new


async def _install(
    store: RedisStore,
    engine: Engine,
    parts: list[int],
    current: CutPoints | None,
    new: CutPoints,
) -> bool:
    """Install ``new`` (beginning an era) over ``current`` by compare-and-set; if it
    went in, delete the summaries of the era it ends, and of this rules version's
    unnamed generation (a document from before eras): nobody on these rules counts into
    them again. Only named ones: an unnamed generation of other rules is left."""
    if not await store.put_cuts(current.version if current else 0, new.to_json()):
        return False
    ended = set(current.era.summaries) if current and current.era else set()
    ended |= set(Populations(engine.schemes, engine.rules_version).names)
    await drop_summaries(store, parts, ended - set(new.era.summaries if new.era else ()))
    return True


async def _begin_era(
    store: RedisStore, engine: Engine, parts: list[int], current: CutPoints
) -> CutPoints | None:
    """The version in force again as the next one, beginning an era of ``engine``'s
    summaries (its thresholds were made for these axes: no walk). None: another version
    went in first."""
    version = current.version + 1
    era = Populations(engine.schemes, engine.rules_version).era(version)
    new = dataclasses.replace(current, version=version, era=era)
    if not await _install(store, engine, parts, current, new):
        return None
    log.info("rules change: cut points version %d begins these rules' summaries", version)
    return new


async def ensure_cut_points(
    store: RedisStore,
    engine: Engine,
    partitions: Iterable[int],
    now: Callable[[], int],
    lease_ms: int | None = None,
) -> CutPoints | None:
    """Make sure the namespace's current version was made for ``engine``'s quantile
    axes, computing it (:func:`exact_cut_points` at ``now()``) if it was not, and that it
    records an era of ``engine``'s summaries (:func:`needs_era`); returns the current
    version once it is (None: there is no version and nobody to rank, so nothing can be
    misranked: the first refresh makes one)."""
    parts = list(partitions)
    lease = PassLease(store) if lease_ms is None else PassLease(store, lease_ms)
    waited = 0.0
    while True:
        doc = await store.cuts()
        current = CutPoints.from_json(doc) if doc else None
        if not needs_pass(engine, current):
            if current is None or not needs_era(engine, current):
                return current
            new = await _begin_era(store, engine, parts, current)
            if new is not None:
                return new
            continue  # another version went in meanwhile: look again
        if await lease.take():
            try:
                new = await _walk_and_install(store, engine, parts, now(), current, lease)
            finally:
                await lease.release()
            if new is not None:
                return new
            if doc == await store.cuts():
                return current  # nobody to rank: nothing to compute
            continue  # another version went in meanwhile: look again
        if waited % _SAY_EVERY_S < _POLL_S:
            log.info("rules change: waiting for another worker's new cut points")
        await asyncio.sleep(_POLL_S)
        waited += _POLL_S


async def summaries_complete(
    store: RedisStore, rules_version: str, partitions: Iterable[int], since: int | None = None
) -> bool:
    """Do the incremental summaries of ``rules_version``'s era begun at ``since`` hold
    every customer? Not while a partition's sweep marker (``rules/cut|cursor``) is of
    other rules or an earlier era, or mid-way: a refresh would compute cuts from the
    customers re-evaluated so far. A partition never swept (no marker) has nothing
    pending."""
    for p in partitions:
        raw = await store.meta_field(p, SWEEP)
        if raw is None:
            continue
        target, _, cursor = raw.partition("|")
        rules, _, cut = target.partition("/")
        if rules != rules_version or cursor != "done":
            return False
        if since is not None and not (cut.isdigit() and int(cut) >= since):
            return False
    return True
