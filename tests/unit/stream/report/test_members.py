"""Segment members as rows (:mod:`stream.report.members`), the resumable spool
(:mod:`stream.report.export`) and the API's cursors (:mod:`stream.api.members`): pure, or
files in a temporary directory. Each test names the broken behaviour it catches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from schemas.times import DAY_MS
from segments.bgnbd import BgNbdParams
from segments.grid import Axis, GridScheme
from segments.model import Columns, CustomerState
from segments.value import ValueModel, ValuePolicy, figures
from stream.api.lookup import BadParameter
from stream.api.members import cursor_of, parse_cursor, parse_limit
from stream.report.export import ExportTarget, ResumeRefused, Spool
from stream.report.members import (
    COLUMNS,
    BadQuery,
    check_sort,
    csv_header,
    csv_line,
    find_scheme,
    member_rows,
    sort_key,
)

NOW = 1_780_000_000_000
MODEL = ValueModel(BgNbdParams(0.24, 30.9, 0.79, 2.43), 2357, -9582.4, 0)
POLICY = ValuePolicy()


def _scheme(value_figures: bool) -> GridScheme:
    return GridScheme(
        "tiers",
        [Axis("m", (10_000_000,))],  # 1,000.00 in units
        {(1,): "small", (2,): "big"},
        {"small": "S", "big": "B"},
        value_figures=value_figures,
    )


def _state(cid: str, segment: str, f: int, m_units: int, days_ago: int) -> CustomerState:
    last = NOW - days_ago * DAY_MS
    return CustomerState(
        cid, f, m_units, last - 30 * DAY_MS, last, last, segments={"tiers": segment}
    )


STATES = [
    _state("c1", "big", 3, 20_000_000, 10),
    _state("c2", "small", 1, 1_000_000, 5),
    _state("c3", "big", 1, 30_000_000, 200),
    _state("c0", "big", 2, 20_000_000, 40),
]


def test_rows_are_the_segments_members_with_figures_only_where_the_transitions_have_them() -> None:
    """Catches rows of other segments, money not as an exact decimal, recency off its
    as-of, and value figures on a scheme without ``value_figures`` or before a fit (or
    other figures than the transitions carry)."""
    plain = member_rows(STATES, _scheme(False), "big", MODEL, POLICY, NOW)
    assert [r["customer_id"] for r in plain] == ["c1", "c3", "c0"]
    assert plain[0]["monetary"] == "2000" and plain[0]["recency_days"] == 10.0
    assert plain[0]["label"] == "B" and list(plain[0]) == list(COLUMNS)
    assert all(r["clv"] is None for r in plain)
    assert all(
        r["clv"] is None for r in member_rows(STATES, _scheme(True), "big", None, POLICY, NOW)
    )

    valued = member_rows(STATES, _scheme(True), "big", MODEL, POLICY, NOW)
    one = [s for s in STATES if s.customer_id == "c1"]

    expect = figures(MODEL, POLICY, Columns.of(one), np.array([NOW], dtype=np.int64))[0]
    assert {k: valued[0][k] for k in ("p_alive", "expected_orders_1y", "clv")} == expect


def test_sorts_put_the_best_first_with_ties_by_customer_id() -> None:
    """Catches an ascending value sort, value not falling back to net spend, recency
    largest first, unstable ties, and a member without a figure sorted first."""
    rows = member_rows(STATES, _scheme(False), "big", None, POLICY, NOW)

    def order(sort: Any) -> list[str]:
        return [r["customer_id"] for r in sorted(rows, key=lambda r: sort_key(r, sort))]

    assert order("value") == order("spend") == ["c3", "c0", "c1"]  # c0, c1 tie: by id
    assert order("recency") == ["c1", "c0", "c3"]
    assert order("frequency") == ["c1", "c0", "c3"]
    with_clv = [{**rows[0], "clv": "5.00"}, {**rows[1], "clv": "900.10"}]
    assert [r["customer_id"] for r in sorted(with_clv, key=lambda r: sort_key(r, "value"))] == [
        "c3",
        "c1",
    ]
    gone = {**rows[0], "customer_id": "a0", "recency_days": None, "clv": None}
    assert sorted([gone, rows[1]], key=lambda r: sort_key(r, "recency"))[0] is rows[1]


def test_an_unknown_scheme_segment_or_sort_is_named() -> None:
    """Catches a refusal that doesn't say which parameter is wrong, and a clv sort
    accepted where no member has a CLV."""
    schemes = [_scheme(True)]
    with pytest.raises(BadQuery, match="unknown scheme 'rfm'") as e:
        find_scheme(schemes, "rfm", "big")
    assert e.value.name == "scheme"
    with pytest.raises(BadQuery, match="unknown segment 'huge'") as e:
        find_scheme(schemes, "tiers", "huge")
    assert e.value.name == "segment"
    with pytest.raises(BadQuery, match="unknown sort 'size'"):
        check_sort("size", schemes[0], MODEL)
    with pytest.raises(BadQuery, match="no fitted model"):
        check_sort("clv", schemes[0], None)
    with pytest.raises(BadQuery, match="has no value_figures"):
        check_sort("clv", _scheme(False), MODEL)
    assert check_sort("clv", schemes[0], MODEL) == "clv"


def test_csv_has_a_header_and_empty_cells_for_missing_figures() -> None:
    row = member_rows(STATES, _scheme(False), "big", None, POLICY, NOW)[0]
    assert csv_header() == ",".join(COLUMNS) + "\n"
    assert csv_line(row).startswith("c1,big,B,10.0,3,2000,") and csv_line(row).endswith(",,,\n")


TARGET = ExportTarget("ns1", 3, "tiers", "big")


def _rows(p: int) -> list[dict[str, Any]]:
    return [
        {"customer_id": f"p{p}c{i}", "monetary": str(10 * p + i), "clv": None} for i in range(2)
    ]


def test_a_resumed_spool_cuts_what_came_after_its_checkpoint(tmp_path: Path) -> None:
    """Catches a resume that keeps rows of a partition the checkpoint does not name (they
    would be spooled twice), forgets the first run's as-of time, or re-walks a partition
    it finished."""
    spool = Spool(tmp_path / "out.csv.spool", TARGET)
    spool.start(NOW, resume=False)
    spool.add(0, _rows(0))
    with spool.rows.open("ab") as f:  # partition 1 half-written when the export stopped
        f.write(orjson.dumps(_rows(1)[0]) + b"\n")

    again = Spool(tmp_path / "out.csv.spool", TARGET)
    again.start(NOW + 5000, resume=True)
    assert again.done == [0] and again.as_of_ms == NOW
    again.add(1, _rows(1))
    again.add(2, _rows(2))
    ids = [r["customer_id"] for r in again.sorted_rows("spend")]
    assert ids == ["p2c1", "p2c0", "p1c1", "p1c0", "p0c1", "p0c0"]
    assert [r["customer_id"] for r in again.sorted_rows("spend", limit=2)] == ids[:2]
    again.remove()
    assert not again.rows.exists() and not again.checkpoint.exists()


def test_a_checkpoint_is_never_overwritten_nor_resumed_for_another_export(tmp_path: Path) -> None:
    """Catches an export that silently discards an unfinished one, or resumes a checkpoint
    of another segment (mixing two listings)."""
    Spool(tmp_path / "x.spool", TARGET).start(NOW, resume=False)
    with pytest.raises(ResumeRefused, match="add --resume"):
        Spool(tmp_path / "x.spool", TARGET).start(NOW, resume=False)
    other = ExportTarget("ns1", 3, "tiers", "small")
    with pytest.raises(ResumeRefused, match="of another export"):
        Spool(tmp_path / "x.spool", other).start(NOW, resume=True)


def test_cursors_round_trip_and_anything_else_is_named() -> None:
    """Catches a cursor that doesn't decode to its snapshot and offset, and a forged or
    garbled one (or a bad limit) taken instead of refused naming the parameter."""
    assert parse_cursor(cursor_of("0123456789abcdef", 1500)) == ("0123456789abcdef", 1500)
    for bad in ("x", "!!!", cursor_of("nothex", 0), "MDEy"):
        with pytest.raises(BadParameter) as e:
            parse_cursor(bad)
        assert e.value.name == "cursor"
    assert parse_limit(None) == 100 and parse_limit("1000") == 1000
    for bad in ("0", "1001", "-1", "ten", ""):
        with pytest.raises(BadParameter) as e:
            parse_limit(bad)
        assert e.value.name == "limit"
