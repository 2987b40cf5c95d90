"""What every commit adds to the namespace's running tallies: segment sizes and flows.

``GET /segments`` and ``GET /transitions/matrix`` (and ``rfm-stream segments`` /
``report``) read these instead of scanning customers. They are derived from the very
transitions a commit writes and committed in the same atomic write, so they survive
restarts and stay exact under every failure the state itself survives (a fenced or
conflicting commit moves no tally either).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import NamedTuple

from schemas.times import DAY_MS
from segments.model import NONE, TransitionDraft
from segments.worth import WorthDeltas
from state.keys import Keys

__all__ = ["HOUR_MS", "Deltas", "day_of", "tally", "worth_counters"]


class Deltas(NamedTuple):
    """What a change did to the sums kept beside the states, committed with them: the
    quantile summaries' bucket deltas and the worth hashes' field deltas."""

    summaries: dict[str, dict[int, int]]
    worth: dict[str, dict[str, int]]


def worth_counters(d: WorthDeltas) -> dict[str, dict[str, int]]:
    """``d`` as counter hash -> field -> delta (:data:`Keys.WORTH`, :data:`Keys.PARETO`).

    Worth fields are ``scheme|segment|x``: ``m`` revenue, ``f`` orders, ``c`` CLV (cents),
    ``k`` customers holding a CLV; ``||c`` and ``||k`` are the base's customer equity."""
    out: dict[str, dict[str, int]] = {}
    worth = {f"{s}|{g}|m": v for (s, g), v in d.revenue.items()}
    worth.update({f"{s}|{g}|f": v for (s, g), v in d.orders.items()})
    worth.update({f"{s}|{g}|c": v for (s, g), v in d.clv.items()})
    worth.update({f"{s}|{g}|k": v for (s, g), v in d.valued.items()})
    if d.equity.clv:  # the base: scheme and segment left empty
        worth["||c"] = d.equity.clv
    if d.equity.customers:
        worth["||k"] = d.equity.customers
    if worth:
        out[Keys.WORTH] = worth
    pareto = {f"c|{b}": v for b, v in d.counts.items()}
    pareto.update({f"s|{b}": v for b, v in d.sums.items()})
    if pareto:
        out[Keys.PARETO] = pareto
    return out


HOUR_MS = 3_600_000


def day_of(ms: int) -> str:
    """The UTC day (``YYYYMMDD``) of an epoch-ms instant: the flows hash it lands in."""
    return _day_name(ms // DAY_MS)


@functools.lru_cache(maxsize=4096)
def _day_name(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y%m%d")


@functools.lru_cache(maxsize=4096)
def _flows_name(day: int) -> str:
    return Keys.flows(_day_name(day))


def tally(
    drafts: Iterable[TransitionDraft], retention_ms: int
) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """(counter hash -> field -> delta, counter hash -> expire-at ms) for ``drafts``.

    Sizes: the from-segment loses a customer, the to-segment gains one ("none" is not a
    segment). Flows: one per transition, in the hour of its ``effective_at``; a day's
    hash expires ``retention_ms`` after the day ends (event time, so a backfill of old
    history keeps only what is still within retention).
    """
    # one C-level count per draft; the strings are made once per distinct (flow, hour)
    seen = Counter(
        (d.scheme, d.from_segment, d.to_segment, d.effective_ms // HOUR_MS) for d in drafts
    )
    sizes: dict[str, int] = {}
    flows: dict[str, dict[str, int]] = {}
    expire: dict[str, int] = {}
    for (scheme, frm, to, hours), n in seen.items():
        if frm != NONE:
            k = f"{scheme}|{frm}"
            sizes[k] = sizes.get(k, 0) - n
        if to != NONE:
            k = f"{scheme}|{to}"
            sizes[k] = sizes.get(k, 0) + n
        day, hour = divmod(hours, 24)
        name = _flows_name(day)
        field = f"{hour:02d}|{scheme}|{frm}|{to}"
        bucket = flows.setdefault(name, {})
        bucket[field] = bucket.get(field, 0) + n
        if name not in expire:
            expire[name] = (day + 1) * DAY_MS + retention_ms
    counters = {name: deltas for name, deltas in flows.items()}
    nonzero = {k: v for k, v in sizes.items() if v}
    if nonzero:
        counters[Keys.COUNTS] = nonzero
    return counters, expire
