"""What the worker's runtime needs of the Kafka consumer: :class:`ConsumerControls`.

The consumer is faust's, and faust's app is made after the runtime (it needs the
runtime's backlog), so the runtime is given these once the app exists
(:meth:`~stream.live.runtime.Runtime.attach`, by :func:`~stream.live.faust_app.create_app`),
before it starts; until then it acks nothing, knows no high watermark and rewinds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from stream.apply.messages import Msg
from stream.apply.processor import Processor
from stream.live.backpressure import Flow

__all__ = ["ConsumerControls", "consumer_lag"]


class ConsumerControls(Protocol):
    """The consumer's side of the worker: acks, high watermarks, seeks and flow control."""

    @property
    def flow(self) -> Flow:
        """Pause and resume purchases partitions (back-pressure from the outboxes)."""
        ...

    def ack(self, msgs: Sequence[Msg]) -> None:
        """Tell the consumer a batch is done (it moves the group's Kafka offsets)."""
        ...

    def highwater(self, p: int) -> int | None:
        """The high watermark of purchases partition ``p`` (None: not known yet)."""
        ...

    async def rewind(self, p: int, offset: int) -> None:
        """Seek partition ``p`` back to ``offset``, dropping what was fetched past it."""
        ...


def consumer_lag(
    processor: Processor, highwater: Callable[[int], int | None]
) -> dict[int, int | None]:
    """Per partition ``processor`` owns: records not yet applied, against the consumer's
    high watermarks (None: not known yet). Applied is what Redis committed, else the
    claim's resume point."""
    out: dict[int, int | None] = {}
    for p in processor.owned():
        hw = highwater(p)
        applied = processor.applied_offset(p)
        claim = processor.claims.get(p)
        done = applied if applied is not None else (claim.offset if claim else -1)
        out[p] = None if hw is None else max(0, hw - (done + 1))
    return out
