"""The OpenAPI path item of ``/segments/{scheme}/{segment}/members`` (:mod:`stream.api.members`).

Apart from :mod:`stream.api.openapi`, which includes it, to keep that module small.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stream.api.members import DEFAULT_LIMIT, FRESH_MS, MAX_LIMIT, TTL_MS
from stream.report.members import SORTS

__all__ = ["PATH", "members_path"]

PATH = "/segments/{scheme}/{segment}/members"

_MEMBER = {
    "type": "object",
    "required": ["customer_id", "segment", "label", "frequency", "monetary"],
    "properties": {
        "customer_id": {"type": "string"},
        "segment": {"type": "string"},
        "label": {"type": "string"},
        "recency_days": {"type": ["number", "null"]},
        "frequency": {"type": "integer"},
        "monetary": {"type": "string", "description": "Net spend, exact decimal."},
        "first_purchase_at": {"type": ["string", "null"], "format": "date-time"},
        "last_purchase_at": {"type": ["string", "null"], "format": "date-time"},
        "p_alive": {"type": ["number", "null"]},
        "expected_orders_1y": {"type": ["number", "null"]},
        "clv": {"type": ["string", "null"], "description": "Exact decimal."},
    },
}
_SNAPSHOT_PROPERTIES: dict[str, Any] = {
    "snapshot": {"type": "string"},
    "scheme": {"type": "string"},
    "segment": {"type": "string"},
    "sort": {"type": "string", "enum": list(SORTS)},
    "customers": {"type": "integer", "description": "Members in the snapshot."},
    "as_of": {"type": "string", "format": "date-time"},
    "expires_at": {"type": "string", "format": "date-time"},
    "first": {"type": "string", "description": "The cursor of the first page."},
}
_SNAPSHOT = {
    "type": "object",
    "required": list(_SNAPSHOT_PROPERTIES),
    "properties": _SNAPSHOT_PROPERTIES,
}
_PAGE = {
    "type": "object",
    "required": [*_SNAPSHOT_PROPERTIES, "offset", "members", "next"],
    "properties": {
        **_SNAPSHOT_PROPERTIES,
        "offset": {"type": "integer"},
        "members": {"type": "array", "items": _MEMBER},
        "next": {
            "type": ["string", "null"],
            "description": "The cursor of the next page (null: this is the last).",
        },
    },
}


def members_path(
    scheme: dict[str, Any],
    json: Callable[[dict[str, Any], str], dict[str, Any]],
    error: Callable[[str], dict[str, Any]],
) -> dict[str, Any]:
    """The path item; ``scheme``: the scheme parameter's schema, ``json`` and ``error``:
    how the including document writes a JSON and an error response."""
    path_params = [
        {"name": "scheme", "in": "path", "required": True, "schema": scheme},
        {
            "name": "segment",
            "in": "path",
            "required": True,
            "description": "A segment key of the scheme (as GET /segments lists them).",
            "schema": {"type": "string", "minLength": 1},
        },
    ]
    unknown = error("No such scheme, or no such segment in it.")
    unavailable = error("Redis is unavailable.")
    return {
        "post": {
            "summary": "Take a sorted snapshot of a segment's members, to page through",
            "description": "Walks the namespace (every customer read once) and stores the "
            f"sorted members for {TTL_MS // 60_000} minutes; a snapshot of the same listing "
            f"younger than {FRESH_MS // 60_000} minutes is reused (200). Synchronous: it "
            "answers after the walk (its rate per million customers: BENCHMARKS.md).",
            "operationId": "postSegmentMembers",
            "parameters": [
                *path_params,
                {
                    "name": "sort",
                    "in": "query",
                    "required": False,
                    "description": "value (default: CLV where the scheme has value figures "
                    "and the model is fitted, else net spend), spend, clv, frequency: largest "
                    "first; recency: most recent buyer first. Ties by customer id. clv is "
                    "refused (400) where members have no CLV.",
                    "schema": {"type": "string", "enum": list(SORTS)},
                },
            ],
            "responses": {
                "201": json(_SNAPSHOT, "A new snapshot; `first` is its first page's cursor."),
                "200": json(_SNAPSHOT, "A fresh snapshot of the same listing, reused."),
                "400": error("A parameter is wrong; `parameter` names it."),
                "404": unknown,
                "503": unavailable,
            },
        },
        "get": {
            "summary": "A page of a segment's members, from a snapshot's cursor",
            "description": "Pages never change while customers move: they are cut from "
            "the snapshot.",
            "operationId": "getSegmentMembers",
            "parameters": [
                *path_params,
                {
                    "name": "cursor",
                    "in": "query",
                    "required": True,
                    "description": "`first` of a snapshot, or `next` of a page: opaque.",
                    "schema": {"type": "string", "minLength": 1},
                },
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "description": f"Members per page; default {DEFAULT_LIMIT}.",
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                },
            ],
            "responses": {
                "200": json(_PAGE, "The page and the next cursor."),
                "400": error("A parameter is wrong (a cursor not given out, a bad limit)."),
                "404": unknown,
                "410": error("The cursor's snapshot expired; take a new one."),
                "503": unavailable,
            },
        },
    }
