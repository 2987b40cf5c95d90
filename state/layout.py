"""The partition layout a namespace was built with, and the guard against any other.

Keys are laid out per purchases partition (hash tag ``{ns:p}``, one Redis Cluster slot
each), and a customer's partition is the producer's partitioner over its id *modulo the
partition count*. Change the count and most customers hash elsewhere: their state, due
times and order history sit under keys no one reads, their next event starts them from
nothing (a false ``first_purchase``), and the offsets recorded per partition no longer
describe what was applied. There is no safe in-place migration while events flow.

So a namespace records, once, the count it was built with (the first live worker,
backfill or import writing into it), and every later one compares: a different count
is refused with one line naming both counts and the supported procedure, a backfill
into a new namespace (which records the new count) and a promote. ``drop`` deletes the
record with the namespace; a namespace that predates the record adopts the current
count on its next start.

The same record holds how long the namespace's customers keep purchase days (the rules'
longest rolling window, :mod:`segments.windows`): days older than that are gone, so rules
with a longer window would read every existing customer's windowed spend as too low.
Such a change is refused at start, naming the same procedure with the new rules
(:func:`ensure_days_kept`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from schemas.durations import format_duration
from schemas.errors import LayoutMismatch, RfmStreamError
from schemas.times import DAY_MS
from segments.scheme import Scheme
from state.connection import unavailable_as_error
from state.store import RedisStore

__all__ = [
    "PROCEDURE",
    "RULES_PROCEDURE",
    "WindowsNotKept",
    "ensure_days_kept",
    "ensure_layout",
    "recorded_days_kept",
    "recorded_layout",
    "short_windows",
    "window_of",
]

PROCEDURE = (
    "backfill into a new namespace with the new layout (rfm-stream backfill --into NEW), "
    "then promote it (rfm-stream promote NEW)"
)


async def recorded_layout(store: RedisStore) -> tuple[int, str] | None:
    """(partitions, topic) the store's namespace was built with; None if not recorded."""
    client = await store.connect()
    async with unavailable_as_error():
        raw = await client.hmget(store.keys.layout(), "partitions", "topic")
    parts, topic = cast(list[str | None], raw)  # decoded (state.connection.RedisClient)
    return None if parts is None else (int(parts), topic or "?")


def mismatch(namespace: str, built: tuple[int, str], topic: str, partitions: int) -> str:
    """The one-line refusal: both counts, and what to do instead."""
    return (
        f"namespace {namespace!r} was built for {built[0]} partitions of topic {built[1]!r}, "
        f"but topic {topic!r} has {partitions}: keys are laid out per partition, so "
        f"customers would no longer find their state. Supported procedure: {PROCEDURE}"
    )


async def ensure_layout(store: RedisStore, topic: str, partitions: int) -> bool:
    """Record ``partitions`` for the store's namespace if it has no layout yet (returns
    True then), else check it; raises :class:`LayoutMismatch` if the counts differ.

    A namespace made here with no customer yet also records that it keeps the running
    figures (:func:`check_figures_kept`) from its first commit on."""
    client = await store.connect()
    key = store.keys.layout()
    async with unavailable_as_error():
        if await client.hsetnx(key, "partitions", partitions):
            await client.hset(key, "topic", topic)
            if not await populated(store, partitions):
                await client.hset(key, _FIGURES, 1)
            return True
    built = await recorded_layout(store)
    if built is not None and built[0] != partitions:
        raise LayoutMismatch(mismatch(store.keys.namespace, built, topic, partitions))
    return False


# ---------------------------------------------------------------- running figures kept
_FIGURES = "figures"


class FiguresNotKept(RfmStreamError):
    """The namespace predates the running figures (what each segment is worth, win-back):
    they hold only what was committed since, so they are not answered."""


async def populated(store: RedisStore, partitions: int) -> bool:
    counts = await store.tallies.segment_counts(range(partitions))
    return any(n > 0 for segs in counts.values() for n in segs.values())


async def check_figures_kept(store: RedisStore, what: str) -> None:
    """Refuse (:class:`FiguresNotKept`) to answer ``what`` from a namespace that did not
    keep the running figures from its first commit on.

    The worth sums and win-back counters are kept by deltas in each commit: a namespace
    with customers from before them holds sums a first move drives negative (a customer's
    old spend taken from a segment that never held it) and returns to cohorts that
    counted no entries. A namespace recorded as made empty (:func:`ensure_layout`)
    answers, and so does one with no customer (nothing committed: the sums are right, and
    empty); another gets them by a backfill into a new namespace and a promote."""
    client = await store.connect()
    async with unavailable_as_error():
        kept = await client.hget(store.keys.layout(), _FIGURES)
    built = await recorded_layout(store) if kept is None else None
    if kept is None and built is not None and await populated(store, built[0]):
        raise FiguresNotKept(
            f"{what} are not kept for namespace {store.keys.namespace!r}: it predates "
            f"them (its sums would start mid-history). Supported procedure: {PROCEDURE}"
        )


# ---------------------------------------------------------------- purchase days kept
class WindowsNotKept(RfmStreamError):
    """The rules read rolling windows longer than the purchase days the namespace's
    customers hold: their windowed totals would read as if they had bought nothing."""


RULES_PROCEDURE = (
    "backfill into a new namespace with the new rules (RFM_RULES=<file> rfm-stream "
    "backfill --into NEW), then promote it (rfm-stream promote NEW)"
)
_KEPT = "days_kept_ms"


async def recorded_days_kept(store: RedisStore) -> int | None:
    """How long the namespace's customers keep purchase days (ms, 0: none); None if not
    recorded (a namespace from before the record, or a new one)."""
    client = await store.connect()
    async with unavailable_as_error():
        raw = await client.hget(store.keys.layout(), _KEPT)
    return None if raw is None else int(cast(str, raw))


async def ensure_days_kept(
    store: RedisStore, window_ms: int, populated: bool, accept_short: bool = False
) -> None:
    """Check that the namespace's customers kept the purchase days ``window_ms`` (the
    rules' longest window) needs, then record ``window_ms`` as what is kept from now on.

    Refused (:class:`WindowsNotKept`) when the recorded window is shorter and the
    namespace is ``populated`` (has customers), unless ``accept_short`` (the operator
    accepts windows that fill from new events only). A namespace without the record that
    has customers predates it: what its customers kept is unknown (the RFM rules before
    the 365-day pyramid kept no purchase days), so a window is refused there too, unless
    ``accept_short``; a new namespace (no customers) records what these rules need.
    """
    kept = await recorded_days_kept(store)
    short = window_ms > 0 if kept is None else window_ms > kept
    if short and populated and not accept_short:
        raise WindowsNotKept(short_windows(store.keys.namespace, kept, window_ms))
    if kept != window_ms:
        client = await store.connect()
        async with unavailable_as_error():
            await client.hset(store.keys.layout(), _KEPT, window_ms)


def short_windows(namespace: str, kept: int | None, window_ms: int) -> str:
    """The one-line refusal: both windows, what would go wrong, what to do instead."""
    if kept is None:
        had = "purchase days for an unknown window (the namespace predates the record)"
    else:
        had = f"{_days(kept)} of purchase days" if kept else "no purchase days"
    return (
        f"the rules rank over a {_days(window_ms)} window, but the customers of "
        f"namespace {namespace!r} kept {had}: their windowed totals would read 0 and "
        f"everyone would fall to the bottom tier. Supported procedure: {RULES_PROCEDURE} "
        f"(or set RFM_ACCEPT_SHORT_WINDOWS=true: windows fill from new events only)"
    )


def _days(ms: int) -> str:
    """A window as the rules file writes it: ``365d`` (not ``52w1d``)."""
    return f"{ms // DAY_MS}d" if ms % DAY_MS == 0 else format_duration(ms)


def window_of(schemes: Sequence[Scheme]) -> int:
    """The longest rolling window ``schemes`` read (ms, 0: none): what customers keep."""
    return max((w for s in schemes for w in s.window_edges_ms()), default=0)
