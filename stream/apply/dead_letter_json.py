"""Dead letters that always fit: the JSON of a rejected message, bounded in size.

A dead letter carries the original key and value in base64 so the message can be fixed
and replayed. Base64 grows bytes by 4/3, so a message near the broker's limit (or past
it: that is why it was rejected) would make a dead letter the producer refuses, and a
refused dead letter used to stall its partition for good. So every letter is built to
fit :data:`LETTER_MAX_BYTES`: a key or value too large to fit whole is carried as a
prefix, with its full length and sha256 digest (``*_truncated: true``); lengths and
digests are always there, so a consumer can check a replayed original against them.

The record key of a dead letter is the original key when it is at most
:data:`RECORD_KEY_MAX_BYTES`, else the sha256 hex digest of it (a stable key: one
original key's letters still share a DLQ partition).

Pure: bytes in, bytes out; publishing lives in :mod:`stream.kafka.clients`.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson

__all__ = [
    "ERROR_MESSAGE_MAX_CHARS",
    "LETTER_MAX_BYTES",
    "MIN_ERROR_MESSAGE_CHARS",
    "RECORD_KEY_MAX_BYTES",
    "build_letter",
    "letter_identity",
    "minimal_letter",
    "record_key",
]

LETTER_MAX_BYTES = 512 * 1024
"""Largest dead letter (its JSON) the worker publishes: half the producer's
``max_request_size`` (1 MiB, :func:`stream.kafka.clients.make_producer`) and of Kafka's default
``message.max.bytes``, leaving the other half for the record key, headers and batch
framing. It holds the whole of any message up to 384 KiB, six times the default
``RFM_MAX_MESSAGE_BYTES``: with default settings only a message that was too large
anyway is carried as a prefix."""

RECORD_KEY_MAX_BYTES = 1024
"""A longer original key becomes its sha256 hex digest as the letter's record key."""

ERROR_MESSAGE_MAX_CHARS = 4096
"""An error message is cut to this many characters (it can quote the input)."""

MIN_ERROR_MESSAGE_CHARS = 200
"""What :func:`minimal_letter` keeps of the error message."""


def record_key(key: bytes | None) -> bytes | None:
    """The dead letter's own record key for a message keyed ``key``."""
    if key is None or len(key) <= RECORD_KEY_MAX_BYTES:
        return key
    return hashlib.sha256(key).hexdigest().encode()


def _cut(text: str, most: int) -> str:
    if len(text) <= most:
        return text
    return f"{text[:most]}… ({len(text) - most} more characters)"


def _described(name: str, raw: bytes | None, keep: int | None) -> dict[str, Any]:
    """``{name}_b64`` (all of ``raw``, or its first ``keep`` bytes), length, digest, flag."""
    if raw is None:
        return {
            f"{name}_b64": None,
            f"{name}_length": None,
            f"{name}_sha256": None,
            f"{name}_truncated": False,
        }
    part = raw if keep is None or keep >= len(raw) else raw[:keep]
    return {
        f"{name}_b64": base64.b64encode(part).decode(),
        f"{name}_length": len(raw),
        f"{name}_sha256": hashlib.sha256(raw).hexdigest(),
        f"{name}_truncated": len(part) < len(raw),
    }


def _b64_room(chars: int) -> int:
    """How many bytes base64-encode into at most ``chars`` characters."""
    return max(0, chars) // 4 * 3


def build_letter(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    error_class: str,
    error_message: str,
    failed_at: str,
    max_bytes: int = LETTER_MAX_BYTES,
) -> bytes:
    """The dead letter's JSON, at most ``max_bytes`` long.

    Sized by measuring, not estimating: the letter is first built with empty key and
    value prefixes; what is left of ``max_bytes`` goes to the key (at most
    :data:`RECORD_KEY_MAX_BYTES` of it when the whole doesn't fit) and then to the
    value, each in whole base64 quanta. Raises ``ValueError`` only if even that
    skeleton exceeds ``max_bytes`` (a limit below ~1 KiB: a configuration error).
    """
    head = {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "error_class": error_class,
        "error_message": _cut(error_message, ERROR_MESSAGE_MAX_CHARS),
        "failed_at": failed_at,
    }
    whole = {**head, **_described("key", key, None), **_described("value", value, None)}
    out = orjson.dumps(whole)
    if len(out) <= max_bytes:
        return out
    skeleton = orjson.dumps({**head, **_described("key", key, 0), **_described("value", value, 0)})
    room = max_bytes - len(skeleton)
    if room < 0:
        raise ValueError(f"a dead letter needs {len(skeleton)} bytes; the limit is {max_bytes}")
    key_keep = 0
    if key is not None:
        key_keep = min(len(key), _b64_room(room))
        if 4 * -(-len(key) // 3) > room:  # the whole key doesn't fit: a bounded prefix
            key_keep = min(key_keep, RECORD_KEY_MAX_BYTES)
        room -= 4 * -(-key_keep // 3)
    value_keep = _b64_room(room)
    return orjson.dumps(
        {**head, **_described("key", key, key_keep), **_described("value", value, value_keep)}
    )


def minimal_letter(letter: bytes) -> bytes:
    """``letter`` with no key or value bytes left (lengths and digests kept) and a short
    error message: the last form of a dead letter a broker refused as too large."""
    d = orjson.loads(letter)
    for name in ("key", "value"):
        if d.get(f"{name}_b64"):
            d[f"{name}_b64"] = ""
            d[f"{name}_truncated"] = True
    d["error_message"] = _cut(str(d.get("error_message", "")), MIN_ERROR_MESSAGE_CHARS)
    return orjson.dumps(d)


def letter_identity(letter: bytes) -> tuple[str, int, int, str]:
    """What makes two dead letters the same rejection: (topic, partition, offset, class).

    Two attempts at one batch produce letters that differ only in ``failed_at``; this is
    what a publisher remembers to send each rejection once.
    """
    d = orjson.loads(letter)
    return (str(d["topic"]), int(d["partition"]), int(d["offset"]), str(d["error_class"]))
