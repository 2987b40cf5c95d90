"""The exact pass's pure parts (:mod:`segments.cut_points`, :mod:`segments.quantiles`): a
version records the axes it was made for, and summaries built from states directly equal
the incremental ones."""

from __future__ import annotations

import dataclasses
import tomllib

from schemas.rules import RulesFile
from segments import CustomerState, Engine, sketch
from segments.check import build_scheme
from segments.cut_points import CutPoints, axes_of
from segments.quantiles import ExactSummaries, Populations, counted

DAY = 86_400_000
NOW = 400 * DAY


def _schemes(text: str) -> list:
    rules = RulesFile.model_validate(tomllib.loads(text))
    return [build_scheme(name, spec) for name, spec in rules.schemes.items()]


LOYALTY = """
[schemes.loyalty]
axes.f.cuts = [2]
segments.low = { label = "L", cells = ["1"] }
segments.high = { label = "H", cells = ["2"] }
"""
LOYALTY_A = """
[schemes.loyalty]
axes.f.cuts = [2]
axes.a.quantiles = [0.5]
segments.low = { label = "L", cells = ["1*"] }
segments.high = { label = "H", cells = ["2*"] }
"""
PYRAMID = """
[schemes.pyramid]
axes.m.quantiles = [0.5, 0.8, 0.99]
axes.m.window = "{window}"
segments.d = {{ label = "D", cells = ["1"] }}
segments.c = {{ label = "C", cells = ["2"] }}
segments.b = {{ label = "B", cells = ["3"] }}
segments.a = {{ label = "A", cells = ["4"] }}
"""


def _states(n: int) -> list[CustomerState]:
    out = []
    for i in range(n):
        f = 1 + i % 3
        day = NOW // DAY - 1 - (i * 13) % 300
        out.append(
            CustomerState(
                f"c{i}",
                frequency=f,
                monetary=f * (1000 + 137 * i),
                first_ms=day * DAY,
                last_ms=day * DAY,
                cursor_ms=NOW,
                days={day: [f, f * (1000 + 137 * i)]},
            )
        )
    out.append(CustomerState("refunded", cursor_ms=NOW))  # frequency 0: not ranked
    return out


def test_a_version_is_made_for_the_axes_it_records_and_no_others() -> None:
    """Catches a check that compares thresholds rather than axes, one that lets a new
    quantile axis or a changed window through, and one that trusts an old document."""
    old = _schemes(LOYALTY + PYRAMID.format(window="365d"))
    added = _schemes(LOYALTY_A + PYRAMID.format(window="365d"))
    rewindowed = _schemes(LOYALTY + PYRAMID.format(window="90d"))
    relabelled = _schemes(LOYALTY.replace('"H"', '"Hi"') + PYRAMID.format(window="365d"))
    cuts = CutPoints(1, NOW, {"pyramid": {"m": (1, 2, 3)}}, 5, axes=axes_of(old))
    again = CutPoints.from_json(cuts.to_json())
    assert again == cuts and again.made_for(old) and again.made_for(relabelled)
    assert not again.made_for(added) and not again.made_for(rewindowed)
    legacy = {k: v for k, v in cuts.to_json().items() if k != "axes"}
    assert not CutPoints.from_json(legacy).made_for(old)


def test_exact_summaries_equal_the_incremental_ones_and_rank_alike() -> None:
    """The pass over states gives the summaries commits would have built adding each
    customer, hence the same cut points. Catches a pass that counts the customer without
    orders, reads another window, or merges chunks wrongly."""
    schemes = _schemes(LOYALTY_A + PYRAMID.format(window="90d"))
    engine = Engine(schemes)
    states = _states(50)
    for s in states:
        s.stamp = f"{engine.rules_version}/0"
    pops = Populations(schemes, engine.rules_version)
    nobody = [CustomerState(s.customer_id, cursor_ms=NOW) for s in states]
    incremental = pops.deltas(pops.snapshot(nobody), pops.snapshot(states))
    exact = ExactSummaries(pops)
    for i in range(0, len(states), 7):  # in chunks, as the walk reads them
        exact.add(states[i : i + 7])
    assert exact.customers == 50
    assert exact.summaries == {p: sketch.merge(d) for p, d in incremental.items()}
    by_deltas = pops.cut_points(schemes, incremental, NOW, 2, population=50)
    made = exact.cut_points(schemes, NOW, 2, None)
    assert dataclasses.replace(made, era=None) == by_deltas
    assert made.era == pops.era(2)  # the pass begins an era of these rules' summaries
    assert set(by_deltas.thresholds) == {"loyalty", "pyramid"}


def test_a_stamp_counts_only_in_its_rules_era() -> None:
    """Catches a rollback counting customers into the summaries of the rules' earlier era
    (stamped under those rules at a cut version before the era began), an era lost on
    the way through the document, and stamps of other rules counting."""
    schemes = _schemes(LOYALTY_A + PYRAMID.format(window="90d"))
    rv = Engine(schemes).rules_version
    state = _states(1)[0]
    for stamp, since, want in [
        (f"{rv}/3", None, True),  # a document from before eras: any cut
        (f"{rv}/3", 4, False),  # the era before: already in its own summaries
        (f"{rv}/4", 4, True),
        (f"{rv}/9", 4, True),
        ("other/9", 4, False),
        ("", 4, False),
    ]:
        state.stamp = stamp
        assert counted(state, rv, since) is want, (stamp, since)
    era = Populations(schemes, rv).era(4)
    assert set(era.summaries) == set(Populations(schemes, rv, 4).names)
    assert not set(era.summaries) & set(Populations(schemes, rv).names)
    cuts = CutPoints(4, NOW, {}, 1, axes=axes_of(schemes), era=era)
    again = CutPoints.from_json(cuts.to_json())
    assert again == cuts and again.since_for(rv) == 4 and again.since_for("other") is None
