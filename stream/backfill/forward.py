"""Where a backfill's misrouted records and dead letters go: never to the live topics.

A live worker forwards a record found on a partition that does not own its customer to
the owning partition of the live purchases topic (``KafkaOutputs.forward``). A backfill
must not: the live worker would apply the record again (and fire live transitions), and
so would the namespace once promoted. So a backfill's :class:`BackfillOutputs`:

- **stages** a misrouted record under its home partition in the backfill's namespace
  (:mod:`state.forwarded`, idempotent per record: a kill between staging and the commit
  of the partition it was read from stages it again as the same entry);
- once every partition is read (in a parallel backfill: every child's, since a record's
  home may belong to another child), :func:`apply_forwarded` applies the staged records
  of each partition through the same :class:`Processor`, reading them as a log of their
  own whose position commits with the state (a kill resumes after the last applied one);
- publishes **dead letters** to the backfill's own dead-letter topic, ``<dlq>.backfill``
  (:func:`backfill_dlq_topic`), never to the live one: a replay's dead letters are
  history, already dead-lettered live once.

A record the live worker already forwarded is in the topic twice: the original on the
partition it was produced to, and the copy on its home, marked ``rfm-forwarded``
(:mod:`stream.apply.routing`). The two must count once. The copy is read and applied in its
home partition's order like any record there (whether its original is still in the log
or was removed by retention), and the reader remembers its copy id (before the commit
that applies it); a staged original whose copy was read is skipped. So the pair counts
once, however the partitions are shared out between processes and wherever a kill
falls. Not covered: a copy forwarded *after* the backfill read its home partition's end
(a live worker lagging behind the backfill's start) is applied by whoever reads past
that end, the engine's ``event_id`` guard being the only protection there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]  # aiokafka ships no type information
from aiokafka.admin import NewTopic  # type: ignore[import-untyped]  # aiokafka ships no type information
from aiokafka.errors import KafkaError, TopicAlreadyExistsError  # type: ignore[import-untyped]  # aiokafka ships no type information

from schemas.settings import Settings
from state.forwarded import ForwardedStore
from stream.apply.messages import Msg
from stream.apply.modes import STAGED
from stream.apply.processor import Processor
from stream.apply.routing import copy_id
from stream.kafka.outputs import KafkaOutputs
from stream.kafka.security import kafka_admin

__all__ = [
    "BACKFILL_DLQ_SUFFIX",
    "BackfillOutputs",
    "apply_forwarded",
    "backfill_dlq_topic",
    "ensure_backfill_dlq",
    "reading_staged",
]

log = logging.getLogger(__name__)

BACKFILL_DLQ_SUFFIX = ".backfill"


def backfill_dlq_topic(settings: Settings) -> str:
    """The dead-letter topic of backfills: the live one's name + ``.backfill``."""
    return settings.dlq_topic + BACKFILL_DLQ_SUFFIX


async def ensure_backfill_dlq(settings: Settings, timeout_s: float = 30.0) -> None:
    """Create the backfill dead-letter topic if it does not exist yet."""
    topic = backfill_dlq_topic(settings)
    admin = kafka_admin(settings)
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        if topic not in set(await admin.list_topics()):
            try:
                await admin.create_topics(
                    [NewTopic(topic, num_partitions=settings.partitions, replication_factor=1)]
                )
            except TopicAlreadyExistsError:
                pass
            except KafkaError as exc:
                log.warning("could not create topic %s: %s", topic, exc)
    finally:
        await admin.close()


class BackfillOutputs:
    """A backfill's :class:`~stream.apply.processor.Outputs`: dead letters to its own topic,
    misrouted records staged for their home partition (never the live topics)."""

    def __init__(self, producer: AIOKafkaProducer, dlq_topic: str, staging: ForwardedStore) -> None:
        # the live worker's dead-letter publishing, pointed at the backfill's own topic:
        # one rule for letters that fit and never stall on a refusal. Without its memory of
        # acknowledged letters (remember=0): a staged record's letter names its staging
        # sequence number as the offset, which can equal a real record's offset in the same
        # partition, and remembering by (partition, offset, class) would drop one of them
        self.letters = KafkaOutputs(producer, dlq_topic, purchases_topic="", remember=0)
        self.dlq_topic = dlq_topic
        self.staging = staging

    async def dead_letter(self, letters: Sequence[tuple[bytes | None, bytes]]) -> None:
        await self.letters.dead_letter(letters)

    async def forward(self, msgs: Sequence[tuple[int, bytes | None, bytes | None]]) -> None:
        by_home: dict[int, list[tuple[str, bytes | None, bytes | None]]] = {}
        for home, key, value in msgs:
            by_home.setdefault(home, []).append((copy_id(key, value), key, value))
        for home, records in sorted(by_home.items()):
            await self.staging.stage(home, records)


async def apply_forwarded(
    processor: Processor, staging: ForwardedStore, p: int, batch: int
) -> tuple[int, int | None]:
    """Apply the records staged for ``p`` that were not applied yet, skipping those whose
    forwarded copy was read from ``p`` itself; (records applied, latest event time).

    The staged records are a log of their own: the processor reads them with its position
    in the meta field :data:`~state.forwarded.FORWARDED` (committed with the state), so a
    kill resumes after the last one applied, and none is applied twice.
    """
    assert processor.position == STAGED, "apply_forwarded outside reading_staged()"
    copies = await staging.copies(p)
    after = await staging.applied(p)
    applied, latest = 0, None
    while True:
        staged = await staging.read(p, after, batch)
        if not staged:
            break
        after = staged[-1][0]
        msgs = [Msg(p, seq, key, value) for seq, cid, key, value in staged if cid not in copies]
        if not msgs:
            continue
        got = await processor.process_partition(p, msgs)
        applied += len(msgs)
        if got is not None and (latest is None or got > latest):
            latest = got
    return applied, latest


@contextlib.contextmanager
def reading_staged(processor: Processor) -> Iterator[None]:
    """The processor reads staged records (position :data:`~stream.apply.modes.STAGED`)
    meanwhile; set once around every partition's :func:`apply_forwarded` (they run side
    by side)."""
    with processor.guard.reading(STAGED):
        yield
