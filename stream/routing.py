"""Which partition owns a customer: the one the producers' partitioner maps its key to.

A customer's state lives under exactly one partition's hash tag. An event found on
another partition (an unkeyed producer, a resend through another path) is forwarded
to the owning partition instead of splitting the customer's state in two.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable

from aiokafka.partitioner import murmur2

__all__ = ["partitioner"]


def _murmur2(key: bytes, n: int) -> int:
    # Java client / aiokafka / kafka-python DefaultPartitioner
    return (murmur2(key) & 0x7FFFFFFF) % n


def _crc32(key: bytes, n: int) -> int:
    # librdkafka "consistent" partitioner
    return zlib.crc32(key) % n


def partitioner(name: str) -> Callable[[bytes, int], int]:
    # memoised: a backfill sees the same customers over and over (pure-Python murmur2)
    return functools.lru_cache(maxsize=1 << 17)({"murmur2": _murmur2, "crc32": _crc32}[name])
