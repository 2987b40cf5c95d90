"""Segment members as rows: who is in a segment, with their figures, sorted and written.

Pure: the rows of one chunk of walked states (:func:`member_rows`), the order of a sort
(:func:`sort_key`), and the CSV / JSON lines they are written as. The walk, the spool and
the resume are :mod:`stream.report.export`; the HTTP snapshots :mod:`stream.api.members`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, get_args

import numpy as np
import orjson

from schemas.errors import RfmStreamError
from schemas.money import from_units
from schemas.times import DAY_MS
from segments.model import NONE, Columns, CustomerState
from segments.scheme import Scheme
from segments.value import ValueModel, ValuePolicy, figures
from stream.apply.encode import iso

__all__ = [
    "COLUMNS",
    "FORMATS",
    "SORTS",
    "BadQuery",
    "Format",
    "MembersQuery",
    "Sort",
    "check_sort",
    "csv_header",
    "csv_line",
    "find_scheme",
    "has_figures",
    "jsonl_line",
    "member_rows",
    "sort_key",
]

Sort = Literal["value", "spend", "recency", "clv", "frequency"]
SORTS: tuple[str, ...] = get_args(Sort)
Format = Literal["csv", "jsonl"]
FORMATS: tuple[str, ...] = get_args(Format)

COLUMNS = (
    "customer_id",
    "segment",
    "label",
    "recency_days",
    "frequency",
    "monetary",
    "first_purchase_at",
    "last_purchase_at",
    "p_alive",
    "expected_orders_1y",
    "clv",
)
"""A member's fields, in the CSV's column order; the value figures are null (an empty
CSV cell) unless the scheme has ``value_figures`` and the base's model is fitted."""


@dataclass(frozen=True, slots=True)
class MembersQuery:
    """A listing as asked: whose members, in which order, how many, written how (the
    sort is checked against the scheme once it is known: :func:`check_sort`)."""

    scheme: str
    segment: str
    sort: str = "value"
    limit: int | None = None
    format: Format = "csv"


class BadQuery(RfmStreamError):
    """A members query names something that isn't there; ``name`` says which parameter."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def find_scheme(schemes: Sequence[Scheme], scheme: str, segment: str) -> Scheme:
    """The scheme named ``scheme``, refusing an unknown scheme or a segment it hasn't."""
    by_name = {s.name: s for s in schemes}
    found = by_name.get(scheme)
    if found is None:
        raise BadQuery("scheme", f"unknown scheme {scheme!r}; one of {', '.join(by_name)}")
    if segment not in found.labels:
        raise BadQuery(
            "segment",
            f"unknown segment {segment!r} of scheme {scheme!r}; one of {', '.join(found.labels)}",
        )
    return found


def has_figures(scheme: Scheme, model: ValueModel | None) -> bool:
    """Whether members get P(alive), expected orders and CLV: as the transitions do, a
    ``value_figures`` scheme once the base's model is fitted."""
    return model is not None and bool(getattr(scheme, "value_figures", False))


def check_sort(sort: str, scheme: Scheme, model: ValueModel | None) -> Sort:
    """``sort`` as a :data:`Sort`; ``clv`` only where the members have a CLV."""
    if sort not in SORTS:
        raise BadQuery("sort", f"unknown sort {sort!r}; one of {', '.join(SORTS)}")
    if sort == "clv" and not has_figures(scheme, model):
        why = "has no value_figures" if model is not None else "'s base has no fitted model yet"
        raise BadQuery("sort", f"sort 'clv': scheme {scheme.name!r} {why}; sort by value")
    return sort  # type: ignore[return-value]  # checked against SORTS just above


def member_rows(
    states: Sequence[CustomerState],
    scheme: Scheme,
    segment: str,
    model: ValueModel | None,
    policy: ValuePolicy,
    now_ms: int,
) -> list[dict[str, Any]]:
    """The rows of those of ``states`` in ``segment`` of ``scheme``, as of ``now_ms``.

    Each customer is seen as of ``max(now, cursor)``, as ``GET /customers/{id}`` shows
    them; the value figures are computed as that view does (one numpy call per chunk).
    """
    members = [s for s in states if s.segments.get(scheme.name, NONE) == segment]
    if not members:
        return []
    at = np.fromiter((max(now_ms, s.cursor_ms) for s in members), np.int64, len(members))
    values: list[dict[str, object] | None] = [None] * len(members)
    if model is not None and has_figures(scheme, model):
        buyers = [i for i, s in enumerate(members) if s.frequency > 0]
        if buyers:
            cols = Columns.of([members[i] for i in buyers])
            for i, fig in zip(buyers, figures(model, policy, cols, at[buyers]), strict=True):
                values[i] = fig
    label = scheme.label(segment)
    rows = []
    for s, asof, v in zip(members, at.tolist(), values, strict=True):
        bought = s.first_ms is not None
        rows.append(
            {
                "customer_id": s.customer_id,
                "segment": segment,
                "label": label,
                "recency_days": round((asof - s.last_ms) / DAY_MS, 6) if bought else None,
                "frequency": s.frequency,
                "monetary": str(from_units(s.monetary)),
                "first_purchase_at": iso(s.first_ms) if s.first_ms is not None else None,
                "last_purchase_at": iso(s.last_ms) if bought else None,
                "p_alive": v["p_alive"] if v else None,
                "expected_orders_1y": v["expected_orders_1y"] if v else None,
                "clv": v["clv"] if v else None,
            }
        )
    return rows


def sort_key(row: Mapping[str, Any], sort: Sort) -> tuple[float, str]:
    """Ascending key of ``row`` under ``sort``: best first, ties by customer id.

    ``value`` is the CLV where members have one, else the net spend; ``recency`` puts
    the most recent buyer first (fewest days since the last purchase); the others are
    largest first. A member with no figure for the key (no purchase left) comes last.
    """
    if sort == "recency":
        days = row["recency_days"]
        primary = float("inf") if days is None else float(days)
    else:
        figure: Any
        if sort == "spend":
            figure = row["monetary"]
        elif sort == "frequency":
            figure = row["frequency"]
        elif sort == "clv":
            figure = row["clv"]
        else:  # value
            figure = row["clv"] if row["clv"] is not None else row["monetary"]
        primary = float("inf") if figure is None else -float(Decimal(str(figure)))
    return primary, str(row["customer_id"])


def jsonl_line(row: Mapping[str, Any]) -> bytes:
    return orjson.dumps(row) + b"\n"


def csv_header() -> str:
    return _csv(COLUMNS)


def csv_line(row: Mapping[str, Any]) -> str:
    return _csv(["" if row[c] is None else row[c] for c in COLUMNS])


def _csv(cells: Sequence[object]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    return out.getvalue()
