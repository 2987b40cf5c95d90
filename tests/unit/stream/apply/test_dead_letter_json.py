"""A dead letter always fits: whatever the key, value and error message, its JSON stays
under the limit, validates against the published schema, and says what it left out."""

from __future__ import annotations

import base64
import hashlib
import json

import jsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import DeadLetter
from schemas.export import JSON_DIR
from stream.apply.dead_letter_json import (
    LETTER_MAX_BYTES,
    RECORD_KEY_MAX_BYTES,
    build_letter,
    letter_identity,
    minimal_letter,
    record_key,
)
from stream.apply.encode import encode_dead_letter

VALIDATOR = jsonschema.Draft202012Validator(
    json.loads((JSON_DIR / "dead-letter.json").read_text()),
    format_checker=jsonschema.FormatChecker(),
)


def letter(key: bytes | None, value: bytes | None, message: str = "bad", **kw: int) -> bytes:
    return build_letter(
        topic="purchases",
        partition=2,
        offset=41,
        key=key,
        value=value,
        error_class="MessageTooLarge",
        error_message=message,
        failed_at="2026-12-06T00:00:00.000+00:00",
        **kw,
    )


def check(raw: bytes, key: bytes | None, value: bytes | None, limit: int) -> dict:
    """The letter fits, validates, and its prefixes, lengths and digests are the originals'."""
    assert len(raw) <= limit
    d = orjson.loads(raw)
    VALIDATOR.validate(d)
    DeadLetter.model_validate_json(raw)
    for name, original in (("key", key), ("value", value)):
        if original is None:
            assert d[f"{name}_b64"] is None and d[f"{name}_length"] is None
            continue
        carried = base64.b64decode(d[f"{name}_b64"])
        assert original.startswith(carried)
        assert d[f"{name}_truncated"] == (carried != original)
        assert d[f"{name}_length"] == len(original)
        assert d[f"{name}_sha256"] == hashlib.sha256(original).hexdigest()
    return d


def test_a_small_message_is_carried_whole_with_length_and_digest() -> None:
    d = check(letter(b"c1", b"{not json"), b"c1", b"{not json", LETTER_MAX_BYTES)
    assert not d["value_truncated"] and base64.b64decode(d["value_b64"]) == b"{not json"


@pytest.mark.parametrize("size", [900_000, 1_048_000, 5_000_000])
def test_a_message_too_large_for_a_letter_is_carried_as_a_prefix(size: int) -> None:
    value = bytes(range(256)) * (size // 256)
    raw = encode_dead_letter(
        topic="purchases",
        partition=0,
        offset=3,
        key=b"k" * 2000,
        value=value,
        error_class="MessageTooLarge",
        error_message="x" * 10_000,
        failed_ms=1_700_000_000_000,
    )
    d = check(raw, b"k" * 2000, value, LETTER_MAX_BYTES)
    assert d["value_truncated"] and not d["key_truncated"]  # a key that fits stays whole
    # the limit is used, not wasted: the prefix is within a few KiB of the room there was
    assert len(raw) > LETTER_MAX_BYTES - 8 * 1024
    assert len(d["error_message"]) < 4200


@settings(max_examples=60, deadline=None)
@given(
    key=st.one_of(st.none(), st.binary(max_size=3000)),
    value=st.one_of(st.none(), st.binary(max_size=6000)),
    message=st.text(max_size=5000),
    limit=st.integers(min_value=1500, max_value=12_000),
)
def test_any_letter_fits_its_limit_and_validates(
    key: bytes | None, value: bytes | None, message: str, limit: int
) -> None:
    check(letter(key, value, message, max_bytes=limit), key, value, limit)


def test_a_key_too_large_for_a_letter_is_a_bounded_prefix_and_the_value_still_gets_room() -> None:
    key, value = b"k" * 700_000, b"v" * 300_000
    d = check(letter(key, value), key, value, LETTER_MAX_BYTES)
    assert d["key_truncated"] and len(base64.b64decode(d["key_b64"])) == RECORD_KEY_MAX_BYTES
    assert not d["value_truncated"]  # 300 KB of value fits once the key is cut


def test_control_characters_in_the_message_are_counted_as_written() -> None:
    """orjson writes a control character as six bytes: measured, not estimated."""
    check(letter(b"k", b"v" * 9000, "\x01" * 4000, max_bytes=40_000), b"k", b"v" * 9000, 40_000)


def test_record_key_is_the_original_up_to_the_limit_then_its_digest() -> None:
    assert record_key(None) is None
    assert record_key(b"c" * RECORD_KEY_MAX_BYTES) == b"c" * RECORD_KEY_MAX_BYTES
    long = b"c" * (RECORD_KEY_MAX_BYTES + 1)
    assert record_key(long) == hashlib.sha256(long).hexdigest().encode()


def test_minimal_letter_keeps_the_pointer_length_and_digest_only() -> None:
    value = b"v" * 10_000
    small = minimal_letter(letter(b"key", value, "m" * 1000))
    d = check(small, b"key", value, 1200)
    assert d["value_b64"] == "" and d["value_truncated"]
    assert (d["partition"], d["offset"]) == (2, 41)


def test_identity_ignores_when_it_failed() -> None:
    a = letter(b"k", b"v")
    b = build_letter(
        topic="purchases",
        partition=2,
        offset=41,
        key=b"k",
        value=b"v",
        error_class="MessageTooLarge",
        error_message="other words",
        failed_at="2027-01-01T00:00:00.000+00:00",
    )
    assert letter_identity(a) == letter_identity(b) == ("purchases", 2, 41, "MessageTooLarge")


def test_a_limit_too_small_for_any_letter_is_an_error() -> None:
    with pytest.raises(ValueError, match="the limit is 100"):
        letter(b"k", b"v", max_bytes=100)
