"""What the worker's runtime needs of the Kafka consumer: :class:`ConsumerControls`.

The consumer is faust's, and faust's app is made after the runtime (it needs the
runtime's backlog), so the runtime is given these once the app exists
(:meth:`~stream.live.runtime.Runtime.attach`, by :func:`~stream.live.faust_app.create_app`),
before it starts; until then it acks nothing, knows no high watermark and rewinds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from stream.apply.messages import Msg
from stream.live.backpressure import Flow

__all__ = ["ConsumerControls"]


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
