"""A stand-in for the live worker's consumer (:class:`~stream.live.consumer.ConsumerControls`)
for tests of the runtime without a broker: high watermarks from a function, no flow."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from stream.apply.messages import Msg

__all__ = ["StillFlow", "StubControls"]


@dataclass
class StillFlow:
    """Flow control that pauses nothing."""

    def paused(self) -> set[int]:
        return set()

    def pause(self, partitions: set[int]) -> None:
        pass

    def resume(self, partitions: set[int]) -> None:
        pass


@dataclass
class StubControls:
    """Acks kept, high watermarks from ``marks``, rewinds kept (not performed)."""

    marks: Callable[[int], int | None] = lambda p: None
    flow: StillFlow = field(default_factory=StillFlow)
    acked: list[Msg] = field(default_factory=list)
    rewinds: list[tuple[int, int]] = field(default_factory=list)

    def ack(self, msgs: Sequence[Msg]) -> None:
        self.acked += msgs

    def highwater(self, p: int) -> int | None:
        return self.marks(p)

    async def rewind(self, p: int, offset: int) -> None:
        self.rewinds.append((p, offset))
