"""The safety net: find the record(s) a batch fails on, so the rest of it can be applied.

A batch that raises something unexpected (a bug the validator let through, say) must
not stop its partition: retried as a whole it fails again forever. But an error of the
*infrastructure* (Redis or the broker unavailable or refusing, a fenced or conflicting
commit, the namespace moved) is not a record's fault: dead-lettering the records would
lose events that are fine, so those are raised as before and the batch is retried.

:func:`isolate` splits a failed run of records in halves, in order, until each failure
is pinned on a single record; every other record is applied by the same step that
failed as a whole (a piece at a time, in offset order).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from aiokafka.errors import KafkaError  # type: ignore[import-untyped]  # aiokafka ships no type information
from redis.exceptions import RedisError

from schemas.errors import CommitRefused, RfmStreamError
from segments.model import Event, Outcome
from stream.apply.messages import Batch, Msg

if TYPE_CHECKING:
    from stream.apply.dead_letters import DeadLetters

__all__ = [
    "INFRASTRUCTURE",
    "PROCESSING_ERROR",
    "describe",
    "is_record_fault",
    "isolate",
    "salvage",
]

PROCESSING_ERROR = "ProcessingError"
"""The dead letter's ``error_class`` of a record the stream failed on unexpectedly."""

INFRASTRUCTURE: tuple[type[BaseException], ...] = (
    RfmStreamError,  # our own errors are deliberate: fenced, conflict, moved, unavailable
    RedisError,  # down, timing out, or refusing writes (OOM, READONLY, MISCONF, scripts)
    KafkaError,
    OSError,  # connections, and TimeoutError
    MemoryError,  # the process ran short: no event is at fault
)
"""What is never a record's fault: raised to the retry loop as before, never isolated."""

T = TypeVar("T")
log = logging.getLogger("stream.apply.processor")  # where operators look for these lines


def is_record_fault(exc: BaseException) -> bool:
    """True if ``exc`` may be a record's fault: an ordinary error, not infrastructure
    (and not a cancellation or an exit, which are no ``Exception``). A commit the script
    refused whole (:class:`~schemas.errors.CommitRefused`: a state over its size limit, a
    key of the wrong type) is the batch's: the same batch is refused every time, so
    retried as a whole it would stop the partition for good."""
    if isinstance(exc, CommitRefused):
        return True
    return isinstance(exc, Exception) and not isinstance(exc, INFRASTRUCTURE)


def describe(exc: BaseException) -> str:
    """The dead letter's message: the exception's type and text, one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def isolate(
    items: Sequence[T],
    attempt: Callable[[Sequence[T]], Awaitable[None]],
    faulty: Callable[[T, Exception], Awaitable[None]],
) -> int:
    """Run ``attempt`` over ``items`` in order, a piece at a time, splitting each piece
    that raises a record fault in halves; returns how many items were faulty.

    ``faulty(item, exc)`` is awaited for an item that fails alone, *before* any later
    piece is attempted (a dead letter is out before an offset past it is committed).
    ``attempt`` must leave nothing behind when it raises (no half-applied state: it
    reloads what it changes) and must tolerate a piece it already applied (a step that
    committed and then raised). Infrastructure errors propagate at once.

    Cost: one attempt if nothing fails; about 2·k·log2(n) attempts for k faulty items.
    """
    if not items:
        return 0
    try:
        await attempt(items)
    except Exception as exc:
        if not is_record_fault(exc):
            raise
        if len(items) == 1:
            await faulty(items[0], exc)
            return 1
        mid = len(items) // 2
        return await isolate(items[:mid], attempt, faulty) + await isolate(
            items[mid:], attempt, faulty
        )
    return 0


async def salvage(
    p: int,
    fresh: Batch,
    exc: Exception,
    reapply: Callable[[Sequence[tuple[Msg, Event]], int], Awaitable[Outcome]],
    letters: DeadLetters,
) -> tuple[Outcome, int]:
    """The processor's safety net: partition ``p``'s batch ``fresh`` raised ``exc``, not
    an infrastructure error. Apply it again a piece at a time, in offset order, each piece
    by ``reapply(piece, last offset)`` (on states reloaded from Redis: the failed attempt
    changed its copies in place, and committed with that offset); dead-letter the records
    that fail alone as ``ProcessingError``; then move the offset past the whole batch.

    Returns what the pieces produced and how many records were dead-lettered.
    """
    log.error(
        "partition %d: batch at offsets %d..%d failed (%s): isolating the record(s) at fault",
        p,
        fresh.first,
        fresh.last,
        describe(exc),
        exc_info=exc,
    )
    total = Outcome()

    async def attempt(piece: Sequence[tuple[Msg, Event]]) -> None:
        total.extend(await reapply(piece, piece[-1][0].offset))

    async def faulty(item: tuple[Msg, Event], error: Exception) -> None:
        m = item[0]
        log.error("p%d@%d: applying it failed: %s", m.partition, m.offset, describe(error))
        await letters.send([(m, PROCESSING_ERROR, describe(error))])

    failed = await isolate(sorted(fresh.good, key=lambda x: x[0].offset), attempt, faulty)
    last = fresh.last
    assert last is not None, "a batch to salvage has records"  # else its offset is no int
    await reapply([], last)  # past the whole batch: its last records may be letters
    return total, failed
