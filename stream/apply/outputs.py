"""What the apply path needs of the world beyond Redis: somewhere to send what it does not
apply here (dead letters, and records that belong to another partition).

Its own module so the processor and the dead letters can both name it without importing
each other; the live worker's is :class:`stream.kafka.outputs.KafkaOutputs`, a backfill's
:class:`stream.backfill.forward.BackfillOutputs`, the tests' ``CollectingOutputs``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = ["Outputs"]


class Outputs(Protocol):
    """Where messages that are not applied here go; both calls return once acknowledged."""

    async def dead_letter(self, letters: Sequence[tuple[bytes | None, bytes]]) -> None:
        """Publish (key, dead-letter JSON) pairs to the dead-letter topic."""
        ...

    async def forward(self, msgs: Sequence[tuple[int, bytes | None, bytes | None]]) -> None:
        """Re-publish (partition, key, value) to the purchases topic's owning partition."""
        ...
