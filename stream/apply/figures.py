"""What a change of customer states moves besides the states themselves.

A collaborator of :class:`~stream.apply.processor.Processor`: every path that changes
states (events, the decay step, sweeps) runs the change through :meth:`Figures.summarised`,
so the partition's quantile summaries and worth sums move by exactly what the states did
and commit with them in one write. Why both "before" and "after": a summary or worth hash
holds counts and sums over the partition's customers, so a change is the difference of
each customer's contribution before and after it, never a recount.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from schemas.settings import Settings
from segments import worth
from segments.engine import Engine
from segments.model import CustomerState, Outcome
from segments.quantiles import Populations
from segments.rules import value_policy_of
from stream.apply.tallies import Deltas, worth_counters

__all__ = ["Figures"]


class Figures:
    """The quantile-summary and worth deltas of a change, and each state's CLV."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.populations = Populations.of(engine)
        """The quantile schemes' populations (empty: no quantile scheme, no summaries)."""

    def summarised(
        self, states: Sequence[CustomerState], change: Callable[[], Outcome]
    ) -> tuple[Outcome, Deltas]:
        """Run ``change`` on ``states``; also return the quantile-summary and worth
        deltas it made (both from the states before and after it)."""
        held = worth.marks(states)
        if not self.populations:
            outcome = change()
            self._value(states)
            return outcome, Deltas({}, _worth_of(held, states))
        before = self.populations.snapshot(states)
        outcome = change()
        self._value(states)
        summaries = self.populations.deltas(before, self.populations.snapshot(states))
        return outcome, Deltas(summaries, _worth_of(held, states))

    def _value(self, states: Sequence[CustomerState]) -> None:
        """Keep each evaluated customer's CLV in their state while value figures are on
        (a ``value_figures`` scheme and a fitted model), and none while they are off:
        the worth sums move by the old and new figure (:mod:`segments.worth`)."""
        model = self.engine.model
        if model is None or not any(
            getattr(s, "value_figures", False) for s in self.engine.schemes
        ):
            for st in states:
                st.clv = None
            return
        policy = value_policy_of(self.settings)
        for st, cents in zip(states, worth.clv_cents(model, policy, states), strict=True):
            st.clv = cents


def _worth_of(
    before: list[worth.Mark], states: Sequence[CustomerState]
) -> dict[str, dict[str, int]]:
    """The worth hashes' deltas of ``states`` changed from ``before``."""
    return worth_counters(worth.moved(before, states))
