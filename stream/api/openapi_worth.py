"""The OpenAPI path item of ``GET /segments/value`` and its document's schema: what each
segment is worth (:mod:`stream.api.worth`), beside the other paths of
:mod:`stream.api.openapi`, as :mod:`stream.api.openapi_members` is for the members."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["value_path"]

_MONEY = {"type": "string", "description": "Decimal amount in `currency`, exact."}
_SHARE = {"type": "number", "minimum": 0, "maximum": 1}
_CLV_TOTAL = {
    "type": ["string", "null"],
    "description": "Σ of the members' CLV as of each one's last evaluation (a refit "
    "reaches everyone within one recalibration sweep), to the cent; null while value "
    "figures are off (no value_figures scheme or no fitted model).",
}
_CLV_AVERAGE = {
    "type": ["string", "null"],
    "description": "That Σ / the customers holding a CLV, to the cent; null as above.",
}
_VALUE = {
    "type": "object",
    "required": ["currency", "schemes", "base"],
    "properties": {
        "currency": {"type": "string"},
        "schemes": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["customers", "revenue", "segments"],
                "properties": {
                    "customers": {"type": "integer"},
                    "revenue": _MONEY,
                    "segments": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": [
                                "segment",
                                "label",
                                "customers",
                                "revenue",
                                "revenue_share",
                                "orders",
                                "average_order_value",
                            ],
                            "properties": {
                                "segment": {"type": "string"},
                                "label": {"type": "string"},
                                "customers": {"type": "integer"},
                                "revenue": _MONEY,
                                "revenue_share": _SHARE,
                                "orders": {"type": "integer"},
                                "average_order_value": {
                                    "type": ["string", "null"],
                                    "description": "Revenue / orders, to the cent; null "
                                    "without orders.",
                                },
                                "clv": _CLV_TOTAL,
                                "average_clv": _CLV_AVERAGE,
                            },
                        },
                    },
                },
            },
        },
        "base": {
            "type": "object",
            "required": ["customers", "revenue", "pareto", "bucket_accuracy"],
            "properties": {
                "customers": {"type": "integer"},
                "revenue": _MONEY,
                "pareto": {
                    "type": "array",
                    "description": "Revenue of the top 1 % and 20 % of customers by net "
                    "spend: exact up to the one bucket the cut straddles, so a range "
                    "(low == high when the cut falls between buckets).",
                    "items": {
                        "type": "object",
                        "properties": {
                            "top": _SHARE,
                            "customers": {"type": "integer"},
                            "revenue_low": _MONEY,
                            "revenue_high": _MONEY,
                            "revenue_share_low": _SHARE,
                            "revenue_share_high": _SHARE,
                        },
                    },
                },
                "bucket_accuracy": {
                    "type": "number",
                    "description": "Relative width of the buckets behind the range.",
                },
                "equity": {
                    "type": ["string", "null"],
                    "description": "Customer equity (客户资产): the Σ of every customer's CLV "
                    "as of their last evaluation, to the cent; null while value figures "
                    "are off.",
                },
                "equity_customers": {
                    "type": "integer",
                    "description": "Customers holding a CLV (all with an order once the "
                    "model has been on for one sweep).",
                },
                "average_clv": _CLV_AVERAGE,
            },
        },
    },
}


def value_path(
    scheme: dict[str, Any],
    bad: dict[str, Any],
    json: Callable[[dict[str, Any], str], dict[str, Any]],
    error: Callable[[str], dict[str, Any]],
) -> dict[str, Any]:
    """The path item: ``scheme`` the query parameter's schema, ``bad`` the 400 response,
    ``json`` / ``error`` the document's response builders."""
    return {
        "get": {
            "summary": "Net revenue, share, orders, AOV and CLV per segment; the "
            "Pareto view and customer equity of the base",
            "operationId": "getSegmentValues",
            "parameters": [
                {
                    "name": "scheme",
                    "in": "query",
                    "required": False,
                    "description": "Default: every scheme.",
                    "schema": scheme,
                }
            ],
            "responses": {
                "200": json(_VALUE, "Figures kept by the commits (no scan)."),
                "400": bad,
                "503": error(
                    "Redis is unavailable, or the namespace predates these figures "
                    "(the body says which)."
                ),
            },
        }
    }
