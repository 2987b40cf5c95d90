"""What the stream emits validates against the committed JSON Schemas and the models."""

from __future__ import annotations

import json

import jsonschema
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import DeadLetter, SegmentTransition
from schemas.export import JSON_DIR
from schemas.times import from_ms
from segments import Engine, Purchase, Rfm8
from segments.ids import transition_id
from stream.apply.encode import TransitionEncoder, encode_dead_letter, iso

DAY = 86_400_000


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((JSON_DIR / f"{name}.json").read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.fixture
def drafts() -> list:
    e = Engine([Rfm8(90 * DAY, 2, 10_000_000)])
    states: dict = {}
    out = e.apply_events(
        states, [Purchase("c1", "e1", DAY, 6_000_000), Purchase("c1", "e2", DAY, 6_000_000)]
    ).transitions
    out += e.advance(list(states.values()), 400 * DAY).transitions
    return out


def test_transitions_validate(drafts: list) -> None:
    enc = TransitionEncoder(Engine([Rfm8(90 * DAY, 2, 10_000_000)]), "CNY", "live")
    v = validator("segment-transition")
    causes = []
    for d in drafts:
        raw = enc.encode(d, emitted_ms=500 * DAY)
        data = orjson.loads(raw)
        v.validate(data)
        model = SegmentTransition.model_validate_json(raw)
        causes.append(model.cause)
        assert model.transition_id == transition_id(
            d.customer_id, d.scheme, d.from_segment, d.to_segment, d.effective_ms
        )
    assert causes == ["first_purchase", "purchase", "recency_decay"]
    last = orjson.loads(enc.encode(drafts[-1], 500 * DAY))
    assert last["from_label"] == "高价值客户" and last["to_label"] == "休眠客户"
    assert last["snapshot"]["monetary"] == "1200"
    assert last["snapshot"]["recency_days"] == 90.0
    assert last["effective_at"] == "1970-04-02T00:00:00.000+00:00"


def test_transition_ids_ignore_run_specific_fields(drafts: list) -> None:
    e = Engine([Rfm8(90 * DAY, 2, 10_000_000)])
    live = orjson.loads(TransitionEncoder(e, "CNY", "live").encode(drafts[0], 1))
    back = orjson.loads(TransitionEncoder(e, "CNY", "backfill").encode(drafts[0], 2))
    assert live["transition_id"] == back["transition_id"]
    assert transition_id("c", "rfm8", "a", "b", 1) != transition_id("c", "rfm8", "a", "b", 2)


def test_dead_letter_validates() -> None:
    raw = encode_dead_letter(
        topic="purchases",
        partition=1,
        offset=7,
        key=b"k",
        value=b"\xff",
        error_class="MalformedJSON",
        error_message="not JSON",
        failed_ms=1_700_000_000_000,
    )
    validator("dead-letter").validate(orjson.loads(raw))
    DeadLetter.model_validate_json(raw)


@given(st.integers(min_value=-62_135_596_800_000, max_value=253_402_300_799_999))
def test_iso_is_datetime_isoformat_to_the_millisecond(ms: int) -> None:
    assert iso(ms) == from_ms(ms).isoformat(timespec="milliseconds")


def test_a_move_out_of_a_segment_the_new_rules_no_longer_define_is_encoded() -> None:
    """A rules change that renames or removes a segment moves its members out of a key the
    new rules have no label for: the transition carries the key itself as its label (the
    old label is gone with the old file) instead of the encoder raising ``KeyError`` and
    failing the sweep (found by the rules-change work of issue #20)."""
    e = Engine([Rfm8(90 * DAY, 2, 10_000_000)])
    states: dict = {}
    e.apply_events(states, [Purchase("c1", "e1", DAY, 6_000_000)])
    s = states["c1"]
    s.segments["rfm8"] = "retired_segment"
    s.stamp = "older-rules/0"
    moved = e.reevaluate([s], 2 * DAY).transitions
    assert [(d.from_segment, d.cause) for d in moved] == [("retired_segment", "rules_change")]
    data = orjson.loads(TransitionEncoder(e, "CNY", "live").encode(moved[0], 3 * DAY))
    assert data["from_label"] == "retired_segment" and data["to_label"] == "新客户"
    validator("segment-transition").validate(data)
