"""Rejected records → dead letters (invariant 6: never silently dropped).

One letter per rejection, built from the message it rejects (original bytes, topic,
partition, offset, the reason; :func:`stream.apply.encode.encode_dead_letter` keeps it within
the broker's limits), published through the processor's outputs *before* the commit
that moves the offset past it, then counted by reason and logged. The processor hands
over three kinds of rejection: validation's, the rules' (:class:`Rejection`, pointing
back at their message) and the safety net's (``ProcessingError``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from segments.model import Rejection
from stream.apply.clock import Clock
from stream.apply.encode import encode_dead_letter
from stream.apply.messages import Msg, msg_of
from stream.apply.stats import Stats

if TYPE_CHECKING:
    from stream.apply.outputs import Outputs

__all__ = ["DeadLetters"]

# the processor's logger: the lines operators grep for stay where they were
log = logging.getLogger("stream.apply.processor")


class DeadLetters:
    def __init__(self, outputs: Outputs, topic: str, wall: Clock, stats: Stats) -> None:
        self.outputs = outputs
        self.topic = topic
        self.wall = wall
        self.stats = stats

    async def rejected(self, rejected: Sequence[Rejection]) -> None:
        """Dead-letter events the rules refused, from the message pointer they carry."""
        if rejected:
            await self.send([(msg_of(r.ref), r.error_class, r.message) for r in rejected])

    async def send(self, rejects: Sequence[tuple[Msg, str, str]]) -> None:
        """Publish a letter for each (message, error class, message text), then count."""
        if not rejects:
            return
        now = self.wall.now_ms()
        letters = [
            (
                m.key,
                encode_dead_letter(
                    topic=self.topic,
                    partition=m.partition,
                    offset=m.offset,
                    key=m.key,
                    value=m.value,
                    error_class=error_class,
                    error_message=message,
                    failed_ms=now,
                ),
            )
            for m, error_class, message in rejects
        ]
        await self.outputs.dead_letter(letters)
        counts = self.stats.dead_letters
        for m, error_class, message in rejects:
            counts[error_class] = counts.get(error_class, 0) + 1
            log.warning("dead-lettered p%d@%d: %s: %s", m.partition, m.offset, error_class, message)
