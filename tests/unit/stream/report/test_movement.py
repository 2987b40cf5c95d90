"""The dry runs' pure part (:mod:`stream.report.movement`, :mod:`stream.report.diff_view`):
counting who moves where, the deterministic samples, and what a terminal and a machine
are shown. Needs nothing.
"""

from __future__ import annotations

import io
import random
from decimal import Decimal

import orjson
import pytest

from schemas.money import to_units
from segments.model import CustomerState
from stream.backfill.progress import Progress
from stream.report.diff_view import FmChange, NamespaceDiff, RulesDiff, render_json, render_text
from stream.report.movement import ABSENT, Movement, Sample

T = 1_780_315_200_000  # 2026-06-01T12:00:00Z


def test_a_sample_is_the_smallest_ids_whatever_the_order() -> None:
    """Catches a sample of the first ids met: SCAN order differs between runs, so two
    runs over the same base would show different customers."""
    ids = [f"c{i:03d}" for i in range(50)]
    samples = []
    for seed in range(5):
        random.Random(seed).shuffle(ids)
        s = Sample(3)
        for c in ids:
            s.add(c)
        samples.append((s.count, s.ids))
    assert samples == [(50, ["c000", "c001", "c002"])] * 5
    none = Sample(0)
    none.add("c1")
    assert (none.count, none.ids) == (1, [])


def test_movement_counts_moves_sizes_and_absent_customers() -> None:
    """Catches a matrix that counts customers who stay, loses a scheme the customer has
    no segment in yet (``none``), or can't tell an absent customer from ``none``."""
    m = Movement(["rfm8", "pyramid"], sample=2)
    m.add("a", {"rfm8": "new", "pyramid": "small"}, {"rfm8": "develop", "pyramid": "small"})
    m.add("b", {"rfm8": "new"}, {"rfm8": "develop", "pyramid": "major"})
    m.add("c", {"rfm8": "new"}, {"rfm8": "develop"})
    m.add("d", None, {"rfm8": "new"})
    rfm8 = m.schemes["rfm8"]
    assert [(c.source, c.target, c.count, c.sample) for c in rfm8.matrix()] == [
        ("new", "develop", 3, ("a", "b")),
        (ABSENT, "new", 1, ("d",)),
    ]
    assert rfm8.before == {"new": 3} and rfm8.after == {"develop": 3, "new": 1}
    pyramid = m.schemes["pyramid"].matrix()
    assert [(c.source, c.target, c.count) for c in pyramid] == [
        (ABSENT, "none", 1),  # ties: by name
        ("none", "major", 1),
    ]
    assert (m.customers, m.moved) == (4, 6)
    with pytest.raises(ValueError, match="sample"):
        Movement(["rfm8"], sample=-1)


def _rules_diff() -> RulesDiff:
    m = Movement(["rfm8"], sample=2)
    for i in range(5):
        m.add(f"c{i}", {"rfm8": "new"}, {"rfm8": "develop" if i < 4 else "new"})
    m.add("c9", {"rfm8": "high_value"}, {"rfm8": "dormant"})
    return RulesDiff("live", "new.toml", T, m, cut_version=3, unranked=["pyramid"], recut=["pyr"])


def test_rules_diff_text_shows_the_matrix_and_each_cells_sample() -> None:
    text = render_text(_rules_diff())
    assert text.splitlines() == [
        "new.toml over namespace 'live' as of 2026-06-01T12:00:00+00:00, cut points v3: "
        "6 customers, nothing written",
        "note: pyramid has quantile axes with no summary yet: it ranks nobody",
        "note: pyr's quantile axes changed: shown under the cut points the next refresh "
        "computes (until then the workers rank it with the current ones)",
        "rfm8: 5 would move",
        "  segment           now  new rules          Δ",
        "  develop             0          4         +4",
        "  dormant             0          1         +1",
        "  high_value          1          0         -1",
        "  new                 5          1         -4",
        "  from \\ to   develop  dormant",
        "  high_value        .        1",
        "  new               4        .",
        "  new → develop (4): c0, c1, …",
        "  high_value → dormant (1): c9",
    ]


def test_rules_diff_json_is_what_a_machine_reads() -> None:
    doc = orjson.loads(orjson.dumps(render_json(_rules_diff())))
    assert doc["kind"] == "rules_diff" and doc["customers"] == 6
    assert (doc["cut_version"], doc["unranked"], doc["recut"]) == (3, ["pyramid"], ["pyr"])
    assert doc["as_of"] == "2026-06-01T12:00:00+00:00"
    assert doc["schemes"]["rfm8"]["moves"] == [
        {"from": "new", "to": "develop", "count": 4, "sample": ["c0", "c1"]},
        {"from": "high_value", "to": "dormant", "count": 1, "sample": ["c9"]},
    ]
    assert doc["schemes"]["rfm8"]["after"] == {"develop": 4, "dormant": 1, "new": 1}


def _state(cid: str, segment: str, f: int, money: str) -> CustomerState:
    return CustomerState(
        cid, frequency=f, monetary=to_units(Decimal(money)), segments={"rfm8": segment}
    )


def test_namespace_diff_shows_sizes_moves_and_fm_changes() -> None:
    """Catches money shown in units, an empty comparison that isn't said to be one, and
    an F/M sample that is not the smallest ids or keeps the figures of all that differ."""
    diff = NamespaceDiff("live", "b1", Movement(["rfm8"], sample=1), fm=Sample(1))
    diff.compare("c1", _state("c1", "new", 1, "200"), _state("c1", "new", 1, "200"))
    assert diff.empty
    diff.compare("c3", _state("c3", "new", 1, "200"), _state("c3", "new", 1, "300"))
    diff.compare("c2", _state("c2", "new", 1, "200"), _state("c2", "high_value", 2, "1100"))
    diff.compare("c4", None, _state("c4", "new", 1, "50"))
    diff.left_customers, diff.right_customers = 3, 4
    assert not diff.empty and diff.fm.count == 3
    assert diff.fm_sample == [FmChange("c2", (1, 2), (2_000_000, 11_000_000))]
    lines = render_text(diff).splitlines()
    assert lines[0] == "'live' (3 customers) vs 'b1' (4 customers)"
    assert "  high_value          0          1         +1" in lines
    assert "  new → high_value (1): c2" in lines
    assert lines[-2:] == ["F or M differ: 3 customer(s)", "  c2: F 1 → 2, M 200 → 1100"]
    doc = render_json(diff)
    assert doc["fm_differ"]["sample"] == [
        {"customer_id": "c2", "frequency": [1, 2], "monetary": ["200", "1100"]}
    ]
    assert doc["schemes"]["rfm8"]["moves"][0] == {  # ties: by name
        "from": ABSENT,
        "to": "new",
        "count": 1,
        "sample": ["c4"],
    }


def test_the_backfill_progress_bar_counts_customers_for_a_dry_run() -> None:
    out = io.StringIO()
    bar = Progress(10, "diff", out, unit=("customers", "cust"))
    bar.update(10)
    bar.finish()
    assert "10/10 customers" in out.getvalue() and "cust/s" in out.getvalue()
    backfill = Progress(10, out=io.StringIO()).line()
    assert "0/10 events" in backfill and "ev/s" in backfill  # the backfill's, unchanged
