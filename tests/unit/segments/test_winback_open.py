"""Open win-back returns (segments.winback): a return opens a record in the state, later
spend (refunds taken off) counts to its cohort from the record alone, and the record goes
when the customer lapses again or the 90-day window has closed."""

from __future__ import annotations

from schemas.times import DAY_MS
from segments.model import CustomerState, TransitionDraft
from segments.winback import Before, Spent, keep_open, moves

LAPSED = {"rfm8": frozenset({"dormant", "churning"})}
T0 = 1_767_225_600_000  # 2026-01-01, a day boundary


def draft(frm: str, to: str, cause: str, day: int) -> TransitionDraft:
    return TransitionDraft("c", "rfm8", frm, to, cause, T0 + day * DAY_MS, None, 2, 0, 0, 0, {})


def spend(s: CustomerState, day: int, units: int, drafts: list[TransitionDraft]) -> list[Spent]:
    """One commit of ``s`` at ``day`` changing its net spend by ``units``."""
    before = {"c": Before(s.monetary, list(s.history))}
    s.monetary += units
    s.cursor_ms = T0 + day * DAY_MS
    m = moves(drafts, [s], LAPSED, before)
    keep_open(m, [s])
    return m.spent


def returned() -> CustomerState:
    """Entered churning on day 90, back on day 110 (spending 100)."""
    s = CustomerState(
        "c", history=[["rfm8", "develop", "churning", "recency_decay", T0 + 90 * DAY_MS]]
    )
    got = spend(s, 110, 100, [draft("churning", "high_value", "purchase", 110)])
    assert got == [Spent("rfm8", T0 + 90 * DAY_MS, 100)]
    assert s.returns == [["rfm8", T0 + 90 * DAY_MS, T0 + 110 * DAY_MS]]
    return s


def test_later_spend_counts_from_the_record_alone() -> None:
    s = returned()
    s.history = [["other", "a", "b", "purchase", T0 + 111 * DAY_MS]] * 5  # return pushed out
    assert spend(s, 150, 40, []) == [Spent("rfm8", T0 + 90 * DAY_MS, 40)]
    assert spend(s, 160, -15, []) == [Spent("rfm8", T0 + 90 * DAY_MS, -15)]  # a refund
    assert spend(s, 200, 5, []) == [Spent("rfm8", T0 + 90 * DAY_MS, 5)]  # day 90 of 90


def test_the_record_goes_after_the_window() -> None:
    s = returned()
    assert spend(s, 201, 70, []) == []  # 91 days after the return
    assert s.returns == []


def test_the_record_goes_when_they_lapse_again() -> None:
    s = returned()
    assert spend(s, 140, 0, [draft("high_value", "dormant", "recency_decay", 140)]) == []
    assert s.returns == []
    assert spend(s, 150, 30, []) == []  # no longer a returner's spend
