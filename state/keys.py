"""Redis key layout. Every key of one partition shares the hash tag ``{namespace:partition}``.

So one batch commit (customer hashes + offset + schedule + outbox) touches a single
Redis Cluster slot and can run as one atomic script.

    {prefix}:{ns:p}:meta         hash   epoch, ver (commit counter), off (last applied offset)
    {prefix}:{ns:p}:dx           zset   schedule buckets -> lowest due time (state.schedule)
    {prefix}:{ns:p}:s:<bucket>   zset   customer_id -> next due time (epoch ms), <= 128 each
    {prefix}:{ns:p}:due          zset   legacy schedule (one set), drained as customers commit
    {prefix}:{ns:p}:outbox       stream transitions committed but not yet published
    {prefix}:{ns:p}:c:<customer> hash   a (state.codec), u (due time, state.schedule)
    {prefix}:{ns:p}:q:<population> hash bucket -> customers (quantile summary, segments.sketch)
    {prefix}:{ns:p}:n            hash   scheme|segment -> customers in it now
    {prefix}:{ns:p}:w            hash   scheme|segment|m, |f -> its net revenue, orders
    {prefix}:{ns:p}:wp           hash   c|bucket, s|bucket -> the base's net spend by
                                        bucket: customers, sum (segments.worth)
    {prefix}:{ns:p}:mx:<YYYYMMDD> hash  HH|scheme|from|to -> transitions (expires)
    {prefix}:{ns:cuts}:cuts      string JSON of the current cut-point version
    {prefix}:{ns:layout}:layout  hash   partitions, topic: the layout the namespace was built
                                        with (written once, see state.layout)
    {prefix}:active:<name>       string the namespace promoted to serve <name> (absent: <name>)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Keys"]


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str
    namespace: str

    def tag(self, partition: int) -> str:
        return f"{self.prefix}:{{{self.namespace}:{partition}}}"

    def meta(self, partition: int) -> str:
        return f"{self.tag(partition)}:meta"

    def due(self, partition: int) -> str:
        return f"{self.tag(partition)}:due"

    def schedule_index(self, partition: int) -> str:
        """The schedule's bucket index (see :mod:`state.schedule`; ``due`` is the legacy
        single sorted set, still read and drained)."""
        return f"{self.tag(partition)}:dx"

    def outbox(self, partition: int) -> str:
        return f"{self.tag(partition)}:outbox"

    def summary(self, partition: int, population: str) -> str:
        return f"{self.tag(partition)}:q:{population}"

    COUNTS = "n"
    """Partition-relative name of the segment-count hash: ``scheme|segment`` -> customers."""

    WORTH = "w"
    """Partition-relative name of the worth hash: ``scheme|segment|m`` -> net revenue,
    ``scheme|segment|f`` -> orders of the segment's members now (segments.worth)."""

    PARETO = "wp"
    """Partition-relative name of the Pareto summary: ``c|bucket`` -> customers,
    ``s|bucket`` -> their net revenue, in the buckets of ``segments.worth.BUCKETS`` (a new
    bucketing needs a new name: values added under one must leave under the same)."""

    @staticmethod
    def flows(day: str) -> str:
        """Partition-relative name of one day's transition counts (``YYYYMMDD``, UTC):
        ``HH|scheme|from|to`` -> transitions effective in that hour."""
        return f"mx:{day}"

    def cuts(self) -> str:
        """The namespace's current quantile cut points (one key, CAS-replaced)."""
        return f"{self.prefix}:{{{self.namespace}:cuts}}:cuts"

    def layout(self) -> str:
        """The purchases topic's partition count the namespace was built with."""
        return f"{self.prefix}:{{{self.namespace}:layout}}:layout"

    def customer(self, partition: int, customer_id: str) -> str:
        return f"{self.tag(partition)}:c:{customer_id}"

    def pattern(self) -> str:
        """SCAN pattern over every key of this namespace (promote/drop; never a hot path)."""
        return f"{self.prefix}:{{{self.namespace}:*}}:*"

    def active(self) -> str:
        """Pointer: which physical namespace serves the logical name ``namespace``."""
        return f"{self.prefix}:active:{self.namespace}"

    def customer_pattern(self) -> str:
        """SCAN pattern over every customer hash of this namespace (ops tools only)."""
        return f"{self.prefix}:{{{self.namespace}:*}}:c:*"
