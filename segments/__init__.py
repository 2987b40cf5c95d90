"""The domain, pure and synchronous: RFM state update, schemes, due times, ids."""

from segments.engine import Engine, Policy, event_digest
from segments.ids import transition_id
from segments.model import (
    NEVER,
    NONE,
    Columns,
    CustomerState,
    Event,
    HeldRefund,
    Outcome,
    Purchase,
    Refund,
    Rejection,
    TransitionDraft,
)
from segments.rfm8 import RFM8_LABELS, Rfm8
from segments.rules import build_engine, build_schemes
from segments.scheme import Scheme

__all__ = [
    "NEVER",
    "NONE",
    "RFM8_LABELS",
    "Columns",
    "CustomerState",
    "Engine",
    "Event",
    "HeldRefund",
    "Outcome",
    "Policy",
    "Purchase",
    "Refund",
    "Rejection",
    "Rfm8",
    "Scheme",
    "TransitionDraft",
    "build_engine",
    "build_schemes",
    "event_digest",
    "transition_id",
]
