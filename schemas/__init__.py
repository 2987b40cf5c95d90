"""Everything that crosses a boundary: events in, transitions and dead letters out, settings."""

from schemas.events import InvalidEvent, PurchaseEvent, RefundEvent, parse_event
from schemas.settings import Settings, SettingsError, load_settings
from schemas.transition import DeadLetter, RfmSnapshot, SegmentTransition

__all__ = [
    "DeadLetter",
    "InvalidEvent",
    "PurchaseEvent",
    "RefundEvent",
    "RfmSnapshot",
    "SegmentTransition",
    "Settings",
    "SettingsError",
    "load_settings",
    "parse_event",
]
