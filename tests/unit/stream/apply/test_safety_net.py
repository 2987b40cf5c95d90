"""The safety net's bisection (``stream.apply.safety_net``), on its own: which errors are a record's
fault, how pieces are tried, and in what order (the processor's use of it, on a real
redis-server, is in ``test_hostile_records.py``)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

import pytest
from aiokafka.errors import KafkaConnectionError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from schemas.errors import CommitConflict, CommitRefused, Fenced, Moved, StoreUnavailable
from stream.apply.safety_net import describe, is_record_fault, isolate


class Applier:
    """An ``attempt`` that applies a piece unless it holds a bad item (then raises,
    having applied nothing), and a ``faulty`` sink; both log what happened, in order."""

    def __init__(self, bad: set[int], error: Exception | None = None) -> None:
        self.bad = bad
        self.error = error
        self.log: list[tuple[str, tuple[int, ...]]] = []
        self.attempts = 0

    async def attempt(self, piece: Sequence[int]) -> None:
        self.attempts += 1
        hit = self.bad.intersection(piece)
        if hit:
            raise self.error or ValueError(f"item {min(hit)} is bad")
        self.log.append(("applied", tuple(piece)))

    async def faulty(self, item: int, exc: Exception) -> None:
        self.log.append(("faulty", (item,)))

    def applied(self) -> list[int]:
        return [i for kind, piece in self.log if kind == "applied" for i in piece]


async def test_a_clean_run_is_one_attempt() -> None:
    a = Applier(bad=set())
    assert await isolate(list(range(100)), a.attempt, a.faulty) == 0
    assert a.attempts == 1 and a.applied() == list(range(100))


@pytest.mark.parametrize("bad", [{0}, {57}, {99}, {3, 4}, {10, 60, 98}])
async def test_the_faulty_items_alone_are_dead_lettered_the_rest_applied_in_order(
    bad: set[int],
) -> None:
    a = Applier(bad)
    assert await isolate(list(range(100)), a.attempt, a.faulty) == len(bad)
    assert a.applied() == [i for i in range(100) if i not in bad]
    # in order, and each faulty one reported before anything after it is applied
    assert [piece[0] for _, piece in a.log] == sorted(piece[0] for _, piece in a.log)
    assert [p for kind, p in a.log if kind == "faulty"] == [(b,) for b in sorted(bad)]
    assert a.attempts <= 2 * len(bad) * math.ceil(math.log2(100)) + 1


async def test_every_item_faulty() -> None:
    a = Applier(bad=set(range(8)))
    assert await isolate(list(range(8)), a.attempt, a.faulty) == 8
    assert a.applied() == []


@pytest.mark.parametrize(
    "error",
    [
        StoreUnavailable("redis down"),
        CommitConflict("version moved"),
        Fenced("epoch 3 > 2"),
        Moved("live2"),
        ResponseError("OOM command not allowed when used memory > 'maxmemory'"),
        RedisConnectionError("reset by peer"),
        KafkaConnectionError(),
        OSError("network unreachable"),
        TimeoutError(),
        MemoryError(),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_infrastructure_errors_are_never_blamed_on_a_record(error: Exception) -> None:
    a = Applier(bad={5}, error=error)
    with pytest.raises(type(error)):
        await isolate(list(range(10)), a.attempt, a.faulty)
    assert a.attempts == 1 and a.log == []
    assert not is_record_fault(error)


async def test_a_cancellation_is_not_caught() -> None:
    a = Applier(bad={1}, error=asyncio.CancelledError())  # type: ignore[arg-type]  # a BaseException on purpose
    with pytest.raises(asyncio.CancelledError):
        await isolate([0, 1, 2], a.attempt, a.faulty)
    assert a.log == []


def test_ordinary_errors_are_record_faults() -> None:
    for exc in (ValueError(), OverflowError(), KeyError("k"), TypeError(), ZeroDivisionError()):
        assert is_record_fault(exc), exc


async def test_a_batch_the_commit_script_refuses_is_isolated_not_retried_whole() -> None:
    """CommitRefused (nothing written; the same batch is refused every time) is the
    batch's fault: retried whole it would stop the partition for good."""
    a = Applier(bad={4}, error=CommitRefused("state of c4 is over 4096 fields"))
    assert await isolate(list(range(8)), a.attempt, a.faulty) == 1
    assert a.applied() == [0, 1, 2, 3, 5, 6, 7]


def test_the_description_is_one_line_with_the_type() -> None:
    assert describe(OverflowError("date value\nout of range")) == (
        "OverflowError: date value out of range"
    )
    assert describe(KeyError()) == "KeyError"
