"""What the processor's stepping collaborators share: where they work and who they work for.

:class:`~stream.apply.sweeps.Sweeps` and :class:`~stream.apply.decays.Decays` each run
steps over one owned partition at a time, under the partition's lock and fencing
(:class:`~stream.apply.position.PositionGuard`), reading from the store and committing
through their host's one commit path.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from schemas.settings import Settings
from state.store import RedisStore
from stream.apply.position import PositionGuard
from stream.apply.stats import Stats

__all__ = ["PartitionSteps"]

H = TypeVar("H")


class PartitionSteps(Generic[H]):
    """The settings, store, counters and guard a step needs, and its ``host`` (the
    processor, seen through the protocol the steps need of it)."""

    def __init__(
        self,
        settings: Settings,
        store: RedisStore,
        stats: Stats,
        guard: PositionGuard,
        host: H,
    ) -> None:
        self.settings = settings
        self.store = store
        self.stats = stats
        self.guard = guard
        self.host = host
