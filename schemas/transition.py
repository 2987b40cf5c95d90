"""Outbound contracts: segment transitions (for marketing) and dead letters (for ops)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = [
    "CAUSES",
    "Cause",
    "DeadLetter",
    "Mode",
    "RfmSnapshot",
    "SegmentTransition",
    "ValueFigures",
]

Cause = Literal[
    "purchase", "refund", "recency_decay", "recalibration", "rules_change", "first_purchase"
]
CAUSES: tuple[str, ...] = get_args(Cause)
Mode = Literal["live", "backfill"]


class ValueFigures(BaseModel):
    """What the customer is worth, from the base's fitted BG/NBD model (the cut-point
    version ``cut_version``): for ranking win-back and retention targets."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    p_alive: float = Field(ge=0, le=1, description="Probability the customer is still active.")
    expected_orders_1y: float = Field(ge=0, description="Orders expected in the next year.")
    clv: Decimal = Field(
        description="m0 − A + Σ m_t/(1+r)^t: margin so far, less acquisition cost, plus the "
        "discounted margin the model expects over the CLV lifetime (RFM_CLV_* settings)."
    )


class RfmSnapshot(BaseModel):
    """The customer's RFM inputs at ``effective_at``: the *why* behind the move."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    recency_days: float = Field(description="Days from the last purchase to effective_at.")
    frequency: int = Field(ge=0, description="Number of purchases.")
    monetary: Decimal = Field(description="Total spend, exact decimal.")
    currency: str
    first_purchase_at: AwareDatetime | None
    last_purchase_at: AwareDatetime | None
    scores: dict[str, int] = Field(
        description="Per-axis scores of this scheme, e.g. {'r': 1, 'f': 0, 'm': 1}."
    )
    value: ValueFigures | None = Field(
        default=None,
        description="Value figures, for schemes with value_figures = true once the base's "
        "model is fitted.",
    )


class SegmentTransition(BaseModel):
    """One customer moving between segments of one scheme.

    ``transition_id`` is a hash of (customer, scheme, from, to, effective_at): a
    replay, a crash-redelivery or another worker produce the same id, so consumers
    dedupe on it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    transition_id: str
    customer_id: str
    scheme: str
    from_segment: str = Field(description="Stable key; 'none' before the first purchase.")
    from_label: str
    to_segment: str
    to_label: str
    cause: Cause
    effective_at: AwareDatetime = Field(description="Event time at which the change happened.")
    emitted_at: AwareDatetime = Field(description="Wall-clock time the worker produced it.")
    mode: Mode
    rules_version: str = Field(description="Hash of the segment rules in force.")
    cut_version: int | None = Field(
        default=None,
        description="Version of the quantile cut points this scheme was evaluated with "
        "(absent for schemes with fixed cut points only).",
    )
    event_id: str | None = Field(
        default=None, description="The event that caused it (absent for time-driven causes)."
    )
    snapshot: RfmSnapshot


class DeadLetter(BaseModel):
    """A rejected input message, with everything needed to fix and replay it.

    Always small enough to publish (at most 512 KiB): a key or value too large to carry
    whole is carried as a prefix, with its full length and sha256 digest.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    topic: str
    partition: int
    offset: int
    key_b64: str | None = Field(
        description="Original key bytes, base64 (only a prefix when key_truncated)."
    )
    key_length: int | None = Field(ge=0, description="Original key's length in bytes.")
    key_sha256: str | None = Field(
        pattern=r"^[0-9a-f]{64}$", description="sha256 of the original key bytes, hex."
    )
    key_truncated: bool = Field(
        description="key_b64 holds only the first bytes of the key (it was too large)."
    )
    value_b64: str | None = Field(
        description="Original value bytes, base64 (only a prefix when value_truncated)."
    )
    value_length: int | None = Field(ge=0, description="Original value's length in bytes.")
    value_sha256: str | None = Field(
        pattern=r"^[0-9a-f]{64}$", description="sha256 of the original value bytes, hex."
    )
    value_truncated: bool = Field(
        description="value_b64 holds only the first bytes of the value: the whole would "
        "not fit the broker's limits. Fetch the original from topic/partition/offset."
    )
    error_class: str = Field(description="Kind of problem, e.g. MalformedJSON, ValidationError.")
    error_message: str
    failed_at: AwareDatetime
