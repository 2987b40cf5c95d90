"""Dry runs over a namespace in Redis: a new rules file over the base, or two namespaces.

Read-only: customers are walked with :func:`state.walk.walk_states` (SCAN chunks per
partition, decoded by the codec) and never written back; the results are the pure
:mod:`stream.report.diff_view` values.

``rules diff`` re-evaluates each customer exactly as a worker's sweep will after the
rules change (:meth:`segments.engine.Engine.reevaluate` at the same as-of time, the
worker's clock), so what is due by then (a recency decay the timer has not fired yet)
is in the matrix too: the sweep would publish it as well. Which cut points the new
rules' quantile axes are ranked with: :func:`new_cut_points`, the worker's own
computation when the new rules need a new version.
"""

from __future__ import annotations

from collections.abc import Callable

from schemas.rules import RulesFile
from schemas.settings import Settings
from segments.cut_points import CutPoints, axes_of
from segments.engine import Engine
from segments.model import CustomerState
from segments.rules import build_engine
from state.store import RedisStore
from state.walk import held, load_states, namespace_partitions, walk_states
from stream.apply.routing import partitioner
from stream.apply.rules_change import exact_cut_points, needs_pass
from stream.report.diff_view import NamespaceDiff, RulesDiff
from stream.report.movement import Movement, Sample

__all__ = [
    "CHUNK",
    "customers_in",
    "namespace_diff",
    "new_cut_points",
    "quantile_axes",
    "rules_diff",
    "schemes_in",
]

CHUNK = 1000
"""Customers per SCAN chunk and load (one round trip each)."""

Tick = Callable[[int], None]
"""Told how many customers were just read (a progress bar's ``update``)."""


def _no_tick(n: int) -> None:
    pass


async def customers_in(store: RedisStore, partitions: int) -> int:
    """About how many customers the namespace holds, from its tallies (no scan): the
    largest scheme's total, a progress bar's 100 %."""
    counts = await store.tallies.segment_counts(range(partitions))
    return max((sum(c.values()) for c in counts.values()), default=0)


async def schemes_in(store: RedisStore, partitions: int) -> list[str]:
    """The schemes the namespace's tallies count customers in (no scan): what it was
    built with, which need not be the rules file in force here."""
    counts = await store.tallies.segment_counts(range(partitions))
    return sorted(name for name, segs in counts.items() if any(segs.values()))


def quantile_axes(engine: Engine) -> frozenset[tuple[str, str]]:
    """(scheme, axis description) of every quantile axis: what a cut-point version's
    thresholds were computed for (:func:`segments.cut_points.axes_of`)."""
    return frozenset(
        (scheme, described)
        for scheme, axes in axes_of(engine.schemes).items()
        for described in axes.values()
    )


async def new_cut_points(
    store: RedisStore, current: Engine, new: Engine, partitions: int, now_ms: int
) -> CutPoints | None:
    """The cut points ``new``'s quantile axes are ranked with, installing nothing.

    The namespace's current version when it was made for exactly these quantile axes
    (:meth:`segments.cut_points.CutPoints.made_for`): a worker switching to the new file
    follows that version, and a customer already stamped with it is not re-evaluated.
    Otherwise the version a worker starting on the new file computes before it classifies
    anyone: :func:`stream.apply.rules_change.exact_cut_points`, the same function, over
    every customer's state at ``now_ms`` (it carries the current version's model of the
    base). ``current`` (the rules in force) does not decide: the version's record does.

    None: no version exists and nobody to rank (a worker would install none either).
    """
    doc = await store.cuts()
    stored = CutPoints.from_json(doc) if doc else None
    if not needs_pass(new, stored):
        return stored
    return await exact_cut_points(store, new, range(partitions), now_ms, stored) or stored


def _unranked(engine: Engine) -> list[str]:
    """Schemes with a quantile axis that got no thresholds (it ranks nobody)."""
    return [
        s.name
        for s in engine.schemes
        if any(a.quantiles is not None and a.thresholds is None for a in getattr(s, "axes", ()))
    ]


async def rules_diff(
    settings: Settings,
    store: RedisStore,
    rules: RulesFile,
    source: str,
    now_ms: int,
    sample: int = 3,
    tick: Tick = _no_tick,
) -> RulesDiff:
    """Who would move where if the workers, now running ``settings``' rules, ran
    ``rules`` (read from ``source``) over the store's namespace at ``now_ms``; writes
    nothing."""
    n = await namespace_partitions(store)
    current, draft = build_engine(settings), build_engine(settings, rules)
    doc = await store.cuts()
    stored = CutPoints.from_json(doc).version if doc else None
    cuts = await new_cut_points(store, current, draft, n, now_ms)
    engine = build_engine(settings, rules, cuts)
    changed = {name for name, _ in quantile_axes(current) ^ quantile_axes(draft)}
    recut = [s.name for s in engine.schemes if s.name in changed]
    if engine.cut_version == stored:
        recut = []  # no new version: they rank as the workers will
    movement = Movement([s.name for s in engine.schemes], sample)
    async for states in walk_states(store, range(n), CHUNK):
        before = [dict(s.segments) for s in states]
        engine.reevaluate(states, now_ms)  # on decoded copies: nothing goes back
        for s, was in zip(states, before, strict=True):
            movement.add(s.customer_id, was, s.segments)
        tick(len(states))
    return RulesDiff(
        namespace=store.keys.namespace,
        rules=source,
        as_of_ms=now_ms,
        movement=movement,
        cut_version=engine.cut_version,
        unranked=_unranked(engine),
        recut=recut,
    )


async def namespace_diff(
    settings: Settings,
    left: RedisStore,
    right: RedisStore,
    schemes: list[str],
    sample: int = 3,
    tick: Tick = _no_tick,
) -> NamespaceDiff:
    """``left`` and ``right`` side by side, customer by customer, in ``schemes``.

    Two walks: every customer of ``left`` with their state in ``right`` (looked up in
    the partition ``right``'s layout puts them in), then ``right``'s customers, of whom
    only those ``left`` does not hold are compared (an EXISTS each, not a load). Each
    side's own partition count is used, so two layouts compare too.
    """
    n_left = await namespace_partitions(left)
    n_right = await namespace_partitions(right)
    home = partitioner(settings.partitioner)
    diff = NamespaceDiff(
        left.keys.namespace, right.keys.namespace, Movement(schemes, sample), fm=Sample(sample)
    )
    async for states in walk_states(left, range(n_left), CHUNK):
        found = await _lookup(right, n_right, [s.customer_id for s in states], home)
        for s in states:
            diff.compare(s.customer_id, s, found.get(s.customer_id))
        diff.left_customers += len(states)
        tick(len(states))
    async for states in walk_states(right, range(n_right), CHUNK):
        ids = [s.customer_id for s in states]
        both = await _held(left, n_left, ids, home)  # compared in the first walk
        for s in states:
            if s.customer_id not in both:
                diff.compare(s.customer_id, None, s)
        diff.right_customers += len(states)
        tick(len(states))
    return diff


def _by_home(
    ids: list[str], partitions: int, home: Callable[[bytes, int], int]
) -> dict[int, list[str]]:
    by_partition: dict[int, list[str]] = {}
    for cid in ids:
        by_partition.setdefault(home(cid.encode(), partitions), []).append(cid)
    return by_partition


async def _held(
    store: RedisStore, partitions: int, ids: list[str], home: Callable[[bytes, int], int]
) -> set[str]:
    """Which of ``ids`` ``store`` holds, each asked of the partition it lives in."""
    out: set[str] = set()
    for p, some in sorted(_by_home(ids, partitions, home).items()):
        out |= await held(store, p, some)
    return out


async def _lookup(
    store: RedisStore, partitions: int, ids: list[str], home: Callable[[bytes, int], int]
) -> dict[str, CustomerState]:
    """The states of ``ids`` in ``store``, each read from the partition it lives in."""
    out: dict[str, CustomerState] = {}
    for p, some in sorted(_by_home(ids, partitions, home).items()):
        out.update(await load_states(store, p, some))
    return out
