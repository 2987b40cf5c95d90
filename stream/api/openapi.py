"""The worker's HTTP API as an OpenAPI 3.1 document (served at ``/openapi.json``).

Written out by hand, next to the routes, and a test checks that it validates and names
exactly the routes the server registers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stream.api.openapi_members import PATH as MEMBERS
from stream.api.openapi_members import members_path
from stream.api.openapi_worth import value_path
from stream.api.winback import path_item as winback_path

__all__ = ["OPEN_ROUTES", "ROUTES", "document"]

ROUTES = (
    "/customers/{customer_id}",
    "/segments",
    "/segments/value",
    "/transitions/matrix",
    "/winback",
    MEMBERS,
    "/health",
    "/metrics",
    "/openapi.json",
)
OPEN_ROUTES = frozenset({"/health", "/metrics", "/openapi.json"})
"""Served without the bearer token even when one is set: probes, scrapers and this
document, none of which holds customer data. Every other route needs the token."""

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "What went wrong, in one line."},
        "parameter": {"type": "string", "description": "The parameter at fault (400)."},
    },
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json({"$ref": "#/components/schemas/Error"}, description)


_TIME = {"type": "string", "format": "date-time"}
_SEGMENT = {
    "type": "object",
    "required": ["segment", "label", "scores", "cut_version"],
    "properties": {
        "segment": {"type": "string"},
        "label": {"type": "string"},
        "scores": {"type": "object", "additionalProperties": {"type": "integer"}},
        "cut_version": {"type": ["integer", "null"]},
    },
}
_CUSTOMER = {
    "type": "object",
    "required": ["customer_id", "partition", "frequency", "monetary", "segments", "history"],
    "properties": {
        "customer_id": {"type": "string"},
        "partition": {"type": "integer"},
        "frequency": {"type": "integer"},
        "monetary": {"type": "string", "description": "Net spend, exact decimal."},
        "currency": {"type": "string"},
        "first_purchase_at": {"type": ["string", "null"], "format": "date-time"},
        "last_purchase_at": {"type": ["string", "null"], "format": "date-time"},
        "recency_days": {"type": ["number", "null"]},
        "as_of": _TIME,
        "segments": {"type": "object", "additionalProperties": _SEGMENT},
        "next_due_at": {
            "type": ["string", "null"],
            "format": "date-time",
            "description": "When time alone may move this customer next.",
        },
        "rules_version": {"type": "string"},
        "value": {
            "type": ["object", "null"],
            "description": "P(alive), expected orders next year and CLV from the base's "
            "fitted model (null before the first fit, or without purchases).",
            "properties": {
                "p_alive": {"type": "number"},
                "expected_orders_1y": {"type": "number"},
                "clv": {"type": "string", "description": "Exact decimal."},
            },
        },
        "history": {
            "type": "array",
            "description": "Latest transitions, newest first (RFM_HISTORY_SIZE kept).",
            "items": {
                "type": "object",
                "properties": {
                    "scheme": {"type": "string"},
                    "from_segment": {"type": "string"},
                    "to_segment": {"type": "string"},
                    "cause": {"type": "string"},
                    "effective_at": _TIME,
                },
            },
        },
    },
}
_SEGMENTS = {
    "type": "object",
    "required": ["schemes"],
    "properties": {
        "schemes": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "customers": {"type": "integer"},
                    "segments": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "segment": {"type": "string"},
                                "label": {"type": "string"},
                                "customers": {"type": "integer"},
                            },
                        },
                    },
                },
            },
        }
    },
}
_MATRIX = {
    "type": "object",
    "required": ["scheme", "since", "until", "flows"],
    "properties": {
        "scheme": {"type": "string"},
        "since": _TIME,
        "until": _TIME,
        "bucket": {"type": "string", "enum": ["hour"]},
        "transitions": {"type": "integer"},
        "flows": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "from_segment": {"type": "string"},
                    "to_segment": {"type": "string"},
                    "transitions": {"type": "integer"},
                },
            },
        },
    },
}


def _time_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string", "format": "date-time"},
    }


def document(
    schemes: Sequence[str] | None = None, token: bool = False, max_days: int | None = None
) -> dict[str, Any]:
    """The document; ``schemes``: the names the ``scheme`` parameter takes (the worker's
    rules file), so that a client, or a conformance tester, knows the valid values;
    ``token``: whether this server requires a bearer token on the data routes (declared
    only then, so the document says what this server does); ``max_days``: the matrix's
    limit in day-hashes per partition (``RFM_HTTP_MAX_DAYS``)."""
    bad = _error("A parameter is wrong; `parameter` names it.")
    scheme: dict[str, Any] = {"type": "string", "minLength": 1}
    if schemes:
        scheme["enum"] = list(schemes)
    budget = (
        ""
        if max_days is None
        else f" A range that touches more than {max_days} days (RFM_HTTP_MAX_DAYS: one "
        "day-hash read per day per partition) is refused with 400 naming the limit and "
        "the range's cost."
    )
    doc = _paths(bad, scheme, budget)
    if token:
        doc["components"]["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "RFM_HTTP_TOKEN, as `Authorization: Bearer <token>`.",
            }
        }
        for path, item in doc["paths"].items():
            if path not in OPEN_ROUTES:
                for operation in item.values():
                    operation["security"] = [{"bearer": []}]
                    operation["responses"]["401"] = _error(
                        "No bearer token, or a wrong one (WWW-Authenticate: Bearer)."
                    )
    return doc


def _paths(bad: dict[str, Any], scheme: dict[str, Any], budget: str) -> dict[str, Any]:
    """The document without security: the routes and what they answer."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "rfm-stream worker API",
            "version": "1",
            "description": "Customer lookups, segment sizes and flows of the namespace this "
            "worker serves, read from what it committed (no scans but a segment members "
            "snapshot, which walks the namespace); health and metrics.",
        },
        "paths": {
            "/customers/{customer_id}": {
                "get": {
                    "summary": "A customer's RFM state, segments, next due time and history",
                    "operationId": "getCustomer",
                    "parameters": [
                        {
                            "name": "customer_id",
                            "in": "path",
                            "required": True,
                            "description": "As the events name it. An id no event could "
                            "carry (over 128 bytes, whitespace, braces) is simply not found.",
                            "schema": {"type": "string", "minLength": 1, "maxLength": 128},
                        }
                    ],
                    "responses": {
                        "200": _json(_CUSTOMER, "The customer."),
                        "400": bad,
                        "404": _error("No such customer."),
                        "503": _error("Redis is unavailable."),
                    },
                }
            },
            "/segments": {
                "get": {
                    "summary": "Customers per segment per scheme, now",
                    "operationId": "getSegments",
                    "responses": {
                        "200": _json(_SEGMENTS, "Counts, every segment listed."),
                        "503": _error("Redis is unavailable."),
                    },
                }
            },
            "/segments/value": value_path(scheme, bad, _json, _error),
            "/transitions/matrix": {
                "get": {
                    "summary": "From -> to transition counts of a scheme over a time range",
                    "operationId": "getMatrix",
                    "parameters": [
                        {
                            "name": "scheme",
                            "in": "query",
                            "required": False,
                            "description": "Default: the first scheme of the rules file.",
                            "schema": scheme,
                        },
                        _time_param(
                            "since",
                            "Start (inclusive); default: until - 7 days. A start older "
                            "than what is kept (RFM_MATRIX_RETENTION before until) is moved "
                            "up to it; a start at or after until is an empty range. The "
                            "answer's since and until say which range it counts." + budget,
                        ),
                        _time_param("until", "End (exclusive); default: now."),
                    ],
                    "responses": {
                        "200": _json(_MATRIX, "Counts by (from, to), largest first."),
                        "400": _error(
                            "A parameter is wrong, or the range is over the limit; "
                            "`parameter` names it."
                        ),
                        "503": _error("Redis is unavailable."),
                    },
                }
            },
            "/winback": winback_path(
                scheme,
                bad,
                _error(
                    "Redis is unavailable, or the namespace predates these figures "
                    "(the body says which)."
                ),
            ),
            MEMBERS: members_path(scheme, _json, _error),
            "/health": {
                "get": {
                    "summary": "Ready: started, Redis up, owned partitions caught up",
                    "operationId": "getHealth",
                    "responses": {
                        "200": _json({"type": "object"}, "Ready."),
                        "503": _json({"type": "object"}, "Not ready; the body says why."),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "operationId": "getMetrics",
                    "responses": {
                        "200": {
                            "description": "Prometheus text exposition format.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "operationId": "getOpenApi",
                    "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1.")},
                }
            },
        },
        "components": {"schemas": {"Error": _ERROR}},
    }
