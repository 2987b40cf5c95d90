"""Win-back: who entered a lapsed segment, who came back, how soon, and what they spent.

The course text says "措施得当,每4个中会有1个可能被挽回" (one lost customer in four can be
won back); these are the figures that check it, per scheme, for the segments its rules
file marks ``lapsed = true``. Pure: from the transitions a commit writes and the states it
writes (their bounded ``history``), no new per-customer state.

- **Entered**: a transition from a segment that isn't lapsed (or from none) into a lapsed
  one, counted in the cohorts of its day (its month and its ISO week, UTC, event time).
  Lapsed → lapsed (dormant → churning) is neither an entry nor a return.
- **Returned**: a ``purchase`` transition out of every lapsed segment of the scheme. Its
  cohorts are those of the entry that began the lapse, found by walking the customer's
  history back from the return. History keeps the latest ``RFM_HISTORY_SIZE`` transitions
  of all schemes together: a return whose entry has already left it is counted as
  *unattributed* (so the shortfall shows, never silently). The walk reads the history as
  it was before the commit plus the commit's own transitions, untrimmed: the transitions
  a return itself makes in every scheme don't push its entry out.
- **Days to return**: whole days from entry to return; "within 30 days" is < 30 whole
  days. Kept per day up to :data:`DAY_CAP` (then one bucket), so the median is exact to
  the day.
- **Revenue**: the net spend (the change of lifetime net spend, purchases less refunds, as
  the engine applied it: duplicates never count) a customer commits while their latest
  return of that scheme is at most :data:`REVENUE_DAYS` days old and history still shows it
  and its entry, and they haven't lapsed again; the returning purchase included.
  Attributed to the entry's cohort.

A customer who lapses, returns and lapses again counts in each cohort they enter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple

from schemas.rules import RulesFile
from segments.model import CustomerState, TransitionDraft

__all__ = [
    "DAY_CAP",
    "DAY_MS",
    "HORIZONS",
    "REVENUE_DAYS",
    "Before",
    "Lapsed",
    "Moves",
    "Period",
    "counter_fields",
    "lapsed_of",
    "moves",
]

DAY_MS = 86_400_000
HORIZONS = (30, 60, 90)
"""Returned within this many days: the windows the figures show."""
REVENUE_DAYS = 90
"""How long after a return its customer's spend counts as won-back revenue."""
DAY_CAP = 365
"""Days to return are kept per day below this; this bucket holds every longer one."""
RETURN_CAUSE = "purchase"

Lapsed = Mapping[str, frozenset[str]]
"""scheme -> its lapsed segment keys (schemes with none are left out)."""
Period = Literal["week", "month"]


def lapsed_of(rules: RulesFile) -> dict[str, frozenset[str]]:
    """The lapsed segments of each scheme of ``rules`` that marks any."""
    out = {}
    for name, spec in rules.schemes.items():
        keys = frozenset(k for k, seg in spec.segments.items() if seg.lapsed)
        if keys:
            out[name] = keys
    return out


class Before(NamedTuple):
    """A customer as a commit loaded them: what win-back needs of before the events."""

    monetary: int
    """Lifetime net spend (revenue is its change)."""
    history: list[list[str | int]]
    """``CustomerState.history`` (a copy: the engine appends to and trims the original)."""


class Entered(NamedTuple):
    scheme: str
    entered_ms: int


class Returned(NamedTuple):
    scheme: str
    entered_ms: int | None
    """None: the entry is no longer in the customer's history (unattributed)."""
    returned_ms: int


class Spent(NamedTuple):
    scheme: str
    entered_ms: int
    units: int


@dataclass(slots=True)
class Moves:
    """What one commit adds to the win-back figures."""

    entered: list[Entered] = field(default_factory=list)
    returned: list[Returned] = field(default_factory=list)
    spent: list[Spent] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.entered or self.returned or self.spent)


def _is_entry(lap: frozenset[str], frm: object, to: object) -> bool:
    return frm not in lap and to in lap


def _is_return(lap: frozenset[str], frm: object, to: object, cause: object) -> bool:
    return frm in lap and to not in lap and cause == RETURN_CAUSE


def _entry_of(
    history: Sequence[Sequence[str | int]], lap: frozenset[str], scheme: str, at: int
) -> int | None:
    """Effective ms of the entry that began the lapse left at ``history[at]``, walking
    back through the scheme's lapsed → lapsed moves; None if it has left the history."""
    for h in reversed(history[:at]):
        if h[0] != scheme:
            continue
        if h[2] not in lap:  # an earlier leave: this lapse's entry is no longer kept
            return None
        if h[1] not in lap:
            return int(h[4])
    return None


def _find(history: Sequence[Sequence[str | int]], d: TransitionDraft) -> int | None:
    for i in range(len(history) - 1, -1, -1):
        h = history[i]
        if (
            h[4] == d.effective_ms
            and h[0] == d.scheme
            and h[1] == d.from_segment
            and h[2] == d.to_segment
        ):
            return i
    return None


def _latest_return(
    history: Sequence[Sequence[str | int]], lap: frozenset[str], scheme: str
) -> tuple[int, int] | None:
    """(index, effective ms) of the scheme's latest return in ``history``, unless the
    customer has lapsed again since (their spend is no longer the return's)."""
    for i in range(len(history) - 1, -1, -1):
        h = history[i]
        if h[0] != scheme:
            continue
        if _is_return(lap, h[1], h[2], h[3]):
            return i, int(h[4])
        if h[2] in lap:
            return None
    return None


def _any_return(history: Sequence[Sequence[str | int]], lapsed: Lapsed) -> bool:
    """Whether ``history`` holds a return of any scheme (the cheap test most customers
    fail: their spend is no win-back revenue). Inline: it runs for every spender."""
    for h in history:
        if h[3] == RETURN_CAUSE:
            lap = lapsed.get(h[0])  # type: ignore[arg-type]  # a scheme name, never an int
            if lap is not None and h[1] in lap and h[2] not in lap:
                return True
    return False


def moves(
    drafts: Sequence[TransitionDraft],
    states: Iterable[CustomerState],
    lapsed: Lapsed,
    before: Mapping[str, Before] | None = None,
) -> Moves:
    """The win-back moves of one commit: ``drafts`` and the ``states`` after them;
    ``before``: customer -> :class:`Before` the commit's events (None: no events, e.g. a
    decay step: no return, no spend, and the states' own history is read)."""
    out = Moves()
    if not lapsed:
        return out
    by_id = {s.customer_id: s for s in states}
    mine: dict[str, list[TransitionDraft]] = {}
    seen: dict[str, list[list[str | int]]] = {}

    def history(cid: str) -> list[list[str | int]]:
        """Before the commit + the commit's transitions, untrimmed."""
        if cid not in seen:
            b = (before or {}).get(cid)
            s = by_id.get(cid)
            if b is None:
                seen[cid] = s.history if s else []
            else:
                if not mine:  # grouped once, the first time a history is needed
                    for d in drafts:
                        mine.setdefault(d.customer_id, []).append(d)
                seen[cid] = b.history + [
                    [d.scheme, d.from_segment, d.to_segment, d.cause, d.effective_ms]
                    for d in mine.get(cid, ())
                ]
        return seen[cid]

    returning: set[str] = set()
    for d in drafts:
        lap = lapsed.get(d.scheme)
        if lap is None:
            continue
        if _is_entry(lap, d.from_segment, d.to_segment):
            out.entered.append(Entered(d.scheme, d.effective_ms))
        elif _is_return(lap, d.from_segment, d.to_segment, d.cause):
            returning.add(d.customer_id)
            h = history(d.customer_id)
            at = _find(h, d)
            entry = None if at is None else _entry_of(h, lap, d.scheme, at)
            out.returned.append(Returned(d.scheme, entry, d.effective_ms))
    for cid, b in (before or {}).items():
        s = by_id.get(cid)
        if s is None or s.monetary == b.monetary:
            continue
        if cid not in returning and not _any_return(b.history, lapsed):
            continue
        h = history(cid)
        for scheme, lap in lapsed.items():
            found = _latest_return(h, lap, scheme)
            if found is None or s.cursor_ms - found[1] > REVENUE_DAYS * DAY_MS:
                continue
            entry = _entry_of(h, lap, scheme, found[0])
            if entry is not None:
                out.spent.append(Spent(scheme, entry, s.monetary - b.monetary))
    return out


# ---------------------------------------------------------------------------- fields
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _date(ms: int) -> datetime:
    return _EPOCH + timedelta(days=ms // DAY_MS)


def _cohorts_of(ms: int) -> tuple[str, tuple[str, str]]:
    """(month ``YYYYMM`` holding the counters, (month cohort, ISO week cohort)) of the
    day of ``ms``: both periods are counted at write, so a read sums few fields."""
    d = _date(ms)
    y, w, _ = d.isocalendar()
    return d.strftime("%Y%m"), (d.strftime("%Y-%m"), f"{y}-W{w:02d}")


def counter_fields(m: Moves) -> dict[tuple[str, str], int]:
    """(month ``YYYYMM`` of the entry, field) -> delta for ``m``.

    Fields, for the entry's month cohort (``2026-04``) and ISO week cohort (``2026-W14``)
    alike: ``scheme|cohort|n`` entered; ``…|dK`` returned after K whole days (K =
    :data:`DAY_CAP`: that many or more); ``…|m`` revenue in money units; and
    ``scheme||u`` returns whose entry has left history (in the month of the return). A
    week straddling two months has fields in both months' hashes; a read sums them.
    """
    out: dict[tuple[str, str], int] = {}

    def add(scheme: str, ms: int, kind: str, n: int) -> None:
        month, labels = _cohorts_of(ms)
        for label in labels:
            k = (month, f"{scheme}|{label}|{kind}")
            out[k] = out.get(k, 0) + n

    for scheme, t in m.entered:
        add(scheme, t, "n", 1)
    for scheme, entered, returned in m.returned:
        if entered is None:
            k = (_date(returned).strftime("%Y%m"), f"{scheme}||u")
            out[k] = out.get(k, 0) + 1
            continue
        days = min(max(0, (returned - entered) // DAY_MS), DAY_CAP)
        add(scheme, entered, f"d{days}", 1)
    for scheme, entered, units in m.spent:
        add(scheme, entered, "m", units)
    return {k: v for k, v in out.items() if v}
