"""Which partition owns a customer: the one the producers' partitioner maps its key to.

A customer's state lives under exactly one partition's hash tag. An event found on
another partition (an unkeyed producer, a resend through another path) is forwarded
to the owning partition instead of splitting the customer's state in two.

A live worker forwards such a record by publishing a *copy* of it to the owning
partition, marked with the :data:`FORWARDED_HEADER` header (its value: the record's
:func:`copy_id`). A replay of the topic then sees both the original and the copy and must
apply them once between them (:mod:`stream.backfill.forward`): the header tells a copy
from a record its producer put there, and the copy id pairs it with its original.

:func:`sort_batch` routes each record of a batch: applied here, forwarded, outside the
event-time window, or dead-lettered.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import zlib
from collections.abc import Callable, Iterable

from aiokafka.partitioner import murmur2  # type: ignore[import-untyped]  # aiokafka ships no type information

from schemas.errors import InvalidEvent
from segments.model import Event, Refund
from stream.apply.messages import Batch, Msg, ref_of
from stream.apply.safety_net import PROCESSING_ERROR, describe, is_record_fault

__all__ = [
    "FORWARDED_HEADER",
    "Window",
    "copy_id",
    "forwarded_copy",
    "partitioner",
    "sort_batch",
]

# the processor's logger: its lines were there before sort_batch moved here
log = logging.getLogger("stream.apply.processor")

Window = tuple[int | None, int | None]
"""An event-time range [since, until); None: open on that side."""

FORWARDED_HEADER = "rfm-forwarded"
"""Kafka header of a record a worker forwarded to its owning partition (value: copy id)."""


def copy_id(key: bytes | None, value: bytes | None) -> str:
    """What pairs a forwarded copy with its original: a digest of the key and value.

    Two records with the same key and bytes are the same event (an ``event_id`` is unique
    per event), so they count as one, as the engine's ``event_id`` guard would have it."""
    h = hashlib.blake2b(digest_size=16)
    for part in (key, value):
        h.update(b"-" if part is None else b"+%d:" % len(part) + part)
    return h.hexdigest()


def forwarded_copy(headers: Iterable[tuple[str, bytes]] | None) -> bool:
    """Whether a record's headers mark it as a copy a worker forwarded."""
    return any(name == FORWARDED_HEADER for name, _ in headers or ())


def _murmur2(key: bytes, n: int) -> int:
    # Java client / aiokafka / kafka-python DefaultPartitioner
    h: int = murmur2(key)
    return (h & 0x7FFFFFFF) % n


def _crc32(key: bytes, n: int) -> int:
    # librdkafka "consistent" partitioner
    return zlib.crc32(key) % n


def partitioner(name: str) -> Callable[[bytes, int], int]:
    # memoised: a backfill sees the same customers over and over (pure-Python murmur2)
    return functools.lru_cache(maxsize=1 << 17)({"murmur2": _murmur2, "crc32": _crc32}[name])


def sort_batch(
    p: int,
    msgs: list[Msg],
    event: Callable[[bytes | None, int], Event],
    now: int,
    home_of: Callable[[bytes, int], int],
    n: int | None,
    window: Window,
) -> Batch:
    """Validate (``event``, at wall time ``now``) and route each of partition ``p``'s
    messages: apply here, forward to its home (once the partition count ``n`` is known),
    skip (outside ``window``), or dead-letter."""
    batch = Batch()
    since, until = window
    windowed = since is not None or until is not None
    good = batch.good
    for m in msgs:
        try:
            ev = event(m.value, now)
        except InvalidEvent as exc:
            batch.bad.append((m, exc.error_class, exc.message))
            continue
        except Exception as exc:  # the safety net: a validator bug, not the input's
            if not is_record_fault(exc):
                raise
            log.exception("p%d@%d: validating it failed", m.partition, m.offset)
            batch.bad.append((m, PROCESSING_ERROR, describe(exc)))
            continue
        if windowed and not (
            (since is None or ev.occurred_ms >= since) and (until is None or ev.occurred_ms < until)
        ):
            batch.outside.append(m)
            continue
        if n is not None and (home := home_of(ev.customer_id.encode(), n)) != p:
            batch.misrouted.append((m, home))
            continue
        if type(ev) is Refund:
            ev = ev._replace(ref=ref_of(m))
        good.append((m, ev))
    return batch
