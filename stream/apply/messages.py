"""Consumed messages, transport-neutral, and how a batch of them is sorted for the processor."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from schemas.events import PurchaseEvent, RefundEvent
from schemas.money import to_units
from schemas.times import to_ms
from segments.model import Event, Purchase, Refund

__all__ = ["Batch", "Msg", "engine_event", "msg_of", "ref_of"]


class Msg(NamedTuple):
    """A consumed Kafka record, transport-neutral."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(slots=True)
class Batch:
    """One partition's messages, sorted by what happens to them."""

    good: list[tuple[Msg, Event]] = field(default_factory=list)
    bad: list[tuple[Msg, str, str]] = field(default_factory=list)
    misrouted: list[tuple[Msg, int]] = field(default_factory=list)
    outside: list[Msg] = field(default_factory=list)  # outside a backfill's time range

    @property
    def size(self) -> int:
        return len(self.good) + len(self.bad) + len(self.misrouted) + len(self.outside)

    def _msgs(self) -> list[Msg]:
        """The messages of :attr:`good`, :attr:`bad` and :attr:`misrouted`, in that order."""
        return [
            *(x[0] for x in self.good),
            *(x[0] for x in self.bad),
            *(x[0] for x in self.misrouted),
        ]

    @property
    def first(self) -> int:
        offsets = [m.offset for m in self._msgs()]
        return min([*offsets, *(m.offset for m in self.outside)])

    @property
    def last(self) -> int | None:
        offsets = [m.offset for m in self._msgs()]
        offsets += [m.offset for m in self.outside]
        return max(offsets, default=None)

    def unbroken_from(self, start: int) -> tuple[Batch, int | None]:
        """The messages whose offsets run without a hole from ``start``, sorted by offset,
        and the offset to re-read from if anything lay beyond a hole (else ``None``)."""
        offsets = sorted([m.offset for m in self._msgs()] + [m.offset for m in self.outside])
        end = start - 1
        for o in offsets:
            if o > end + 1:
                break
            end = max(end, o)
        cut = None if end == offsets[-1] else end + 1

        def upto(xs: list[Any], key: Callable[[Any], int]) -> list[Any]:
            return sorted((x for x in xs if key(x) <= end), key=key)

        run = Batch(
            upto(self.good, lambda x: x[0].offset),
            upto(self.bad, lambda x: x[0].offset),
            upto(self.misrouted, lambda x: x[0].offset),
            upto(self.outside, lambda m: m.offset),
        )
        return run, cut

    def after(self, offset: int) -> Batch:
        """Only the messages past ``offset`` (the rest were applied before a restart)."""
        return Batch(
            [x for x in self.good if x[0].offset > offset],
            [x for x in self.bad if x[0].offset > offset],
            [x for x in self.misrouted if x[0].offset > offset],
            [m for m in self.outside if m.offset > offset],
        )


def ref_of(m: Msg) -> str:
    """A compact pointer to the original message, kept with held refunds."""
    b64 = base64.b64encode
    return orjson.dumps(
        {
            "p": m.partition,
            "o": m.offset,
            "k": None if m.key is None else b64(m.key).decode(),
            "v": None if m.value is None else b64(m.value).decode(),
        }
    ).decode()


def msg_of(ref: str) -> Msg:
    d = orjson.loads(ref)
    key = None if d["k"] is None else base64.b64decode(d["k"])
    value = None if d["v"] is None else base64.b64decode(d["v"])
    return Msg(d["p"], d["o"], key, value)


def engine_event(ev: PurchaseEvent | RefundEvent, ref: str = "") -> Event:
    """A validated event as the pure engine takes it (``ref``: where a refund came from)."""
    at, units = to_ms(ev.occurred_at), to_units(ev.amount)
    if isinstance(ev, RefundEvent):
        return Refund(ev.customer_id, ev.event_id, at, units, ev.refund_of, ref)
    return Purchase(ev.customer_id, ev.event_id, at, units, ev.order_id)
