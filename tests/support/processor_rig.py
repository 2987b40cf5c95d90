"""A real :class:`Processor` on a real redis-server, without a broker: what it would
publish is collected by :class:`CollectingOutputs` instead.

For tests of the per-event path (validation, engine, encoding, the fenced commit) that
need no consumer group: the batches are handed to ``process_partition`` directly, with
the offsets a partition would have.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from schemas.settings import Settings, load_settings
from segments.rules import build_engine
from state.layout import ensure_layout
from state.store import RedisStore
from stream.apply.clock import ManualClock
from stream.apply.messages import Msg
from stream.apply.processor import Processor
from tests.support.harness import RULES

__all__ = ["CollectingOutputs", "Rig", "make_rig", "record_rewinds", "sweep_to_end"]


@dataclass
class CollectingOutputs:
    """The processor's :class:`~stream.apply.processor.Outputs`, keeping what it was given."""

    letters: list[dict[str, Any]] = field(default_factory=list)
    forwarded: list[tuple[int, bytes | None, bytes | None]] = field(default_factory=list)

    async def dead_letter(self, letters: Sequence[tuple[bytes | None, bytes]]) -> None:
        self.letters += [orjson.loads(payload) for _, payload in letters]

    async def forward(self, msgs: Sequence[tuple[int, bytes | None, bytes | None]]) -> None:
        self.forwarded += list(msgs)


@dataclass
class Rig:
    settings: Settings
    store: RedisStore
    outputs: CollectingOutputs
    processor: Processor
    clock: ManualClock
    next_offset: dict[int, int] = field(default_factory=dict)

    def messages(self, values: Sequence[bytes | None], partition: int = 0) -> list[Msg]:
        """``values`` as the next records of ``partition`` (offsets in order)."""
        start = self.next_offset.get(partition, 0)
        self.next_offset[partition] = start + len(values)
        return [
            Msg(partition, start + i, f"k{start + i}".encode(), v) for i, v in enumerate(values)
        ]

    async def deliver(self, msgs: Sequence[Msg]) -> None:
        """Hand ``msgs`` (one partition's) to the processor as one batch; again for a
        redelivery after a crash, a rebalance or a failed attempt."""
        await self.processor.process_partition(msgs[0].partition, list(msgs))

    async def feed(self, values: Sequence[bytes | None], partition: int = 0) -> list[Msg]:
        """Process ``values`` as the next records of ``partition``, in one batch."""
        msgs = self.messages(values, partition)
        await self.deliver(msgs)
        return msgs

    async def committed(self, partition: int = 0) -> int:
        return (await self.store.committed_offsets([partition]))[partition]

    async def close(self) -> None:
        await self.store.close()


async def make_rig(redis_url: str, now_ms: int, partitions: int = 1, **overrides: Any) -> Rig:
    """A processor owning ``partitions`` of a fresh namespace, recorded as a first worker
    records it (:func:`state.layout.ensure_layout`: its layout, and that it keeps the
    running figures from its start); both clocks at ``now_ms``."""
    settings = load_settings(
        redis_url=redis_url,
        namespace=f"t{uuid.uuid4().hex[:8]}",
        **{"rules": str(RULES / "rfm8.toml"), **overrides},
    )
    store = RedisStore.from_url(redis_url, settings.key_prefix, settings.namespace)
    outputs = CollectingOutputs()
    clock = ManualClock(now_ms)
    processor = Processor(settings, store, build_engine(settings), outputs, clock, clock)
    await ensure_layout(store, settings.purchases_topic, partitions)
    await processor.assign(range(partitions))
    return Rig(settings, store, outputs, processor, clock)


def record_rewinds(rig: Rig) -> list[tuple[int, int]]:
    """Stand in for the consumer's seek; returns the list of (partition, offset) asked for."""
    asked: list[tuple[int, int]] = []

    async def rewind(p: int, offset: int) -> None:
        asked.append((p, offset))

    rig.processor.guard.seek_with(rewind)
    return asked


async def sweep_to_end(rig: Rig, at_ms: int) -> None:
    """Sweep partition 0 to the end, as the timer would step by step (bounded: a sweep
    that never finishes fails here instead of hanging)."""
    for _ in range(1000):
        if await rig.processor.sweep(0, at_ms):
            return
    raise AssertionError("the sweep never finished")
