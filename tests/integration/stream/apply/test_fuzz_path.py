"""Issue #16: a fuzz test of the whole per-event path.

Generated payloads around the contract (extreme and malformed timestamps, amounts, ids,
unicode, nesting, sizes, refunds of every shape) go in batches through a real
:class:`Processor`: the real validation, engine, encoding and fenced commit against the
test session's real redis-server (no broker: what would be published is collected).
After each batch, and after letting time run far ahead (decays, expiring held refunds):

- nothing was raised;
- every message was applied or dead-lettered, never both, never twice; every dead
  letter's class is one of the README's dead-letter table, and none is the safety net's
  ``ProcessingError`` (that would be a bug the fuzz found);
- what was dead-lettered is exactly what the validator (or the refund rules) refuses,
  with the original value; what Redis holds is the accepted events applied once, as the
  pure engine applies them in one pass;
- the partition's committed offset is past the whole batch;
- every transition committed validates against the published JSON Schema.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from schemas.errors import InvalidEvent
from schemas.export import JSON_DIR
from schemas.times import to_ms
from segments.model import CustomerState, Event, Refund
from segments.rules import build_engine
from stream.apply.messages import ref_of
from tests.support.processor_rig import Rig, make_rig

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
README = (Path(__file__).resolve().parents[4] / "README.md").read_text(encoding="utf-8")
_TABLE = README.split("**Dead letter**", 1)[1].split("\n## ", 1)[0]
DOCUMENTED = {
    c for row in re.findall(r"^\| `(\w+)`(?: / `(\w+)`)? \|", _TABLE, re.M) for c in row if c
}
"""The dead-letter classes of the README's table (a row may name two)."""
TRANSITION = jsonschema.Draft202012Validator(
    json.loads((JSON_DIR / "segment-transition.json").read_text()),
    format_checker=jsonschema.FormatChecker(),
)

CUSTOMERS = ["c0", "c1", "顾客-2", "c3"]
ORDERS = ["o0", "o1", "o2", "o3", "o4"]

# ---------------------------------------------------------------------- strategies
_recent = st.datetimes(
    min_value=datetime(2026, 5, 1),  # noqa: DTZ001 - hypothesis takes naive bounds
    max_value=datetime(2026, 6, 1, 12, 4),  # noqa: DTZ001 - NOW + 4 min: inside the skew
    timezones=st.sampled_from([UTC, *(timezone(timedelta(hours=h)) for h in (-12, 8, 14))]),
).map(lambda t: t.isoformat())
_any_datetime = st.datetimes(timezones=st.timezones()).map(lambda t: t.isoformat())
_edge_times = st.sampled_from(
    [
        "0001-01-01T00:00:00+01:00",
        "0001-01-01T00:00:00-23:59",
        "1026-03-01T10:00:00+08:00",
        "1969-12-31T23:59:59.999999Z",
        "1970-01-01T00:00:00Z",
        "1970-01-01T00:00:00.000001+00:00",
        "1970-01-01T08:00:00+08:00",
        "2199-12-31T23:59:59Z",
        "2200-01-01T00:00:00Z",
        "9999-12-31T23:59:59-23:59",
        "9999-12-31T23:59:59.999999+23:59",
        "2026-02-29T10:00:00Z",
        "2024-02-29T10:00:00Z",
        "2026-05-31T23:59:60Z",
        "2026-05-31T24:00:00Z",
        "2026-05-31T10:00:00",
        "2026-05-31",
        "2026-05-31T10:00:00.1234567Z",
        "2026-05-31T10:00:00+24:00",
        "2026-W22-1T10:00:00Z",
        "２０２６-05-31T10:00:00Z",
        "",
        " 2026-05-31T10:00:00Z ",
    ]
)
_times = st.one_of(
    _recent,
    _recent,
    _edge_times,
    _any_datetime,
    st.integers(-(2**63), 2**63),
    st.floats(),
    st.none(),
    st.text(max_size=40),
)
_amounts = st.one_of(
    st.from_regex(r"\A[1-9][0-9]{0,4}(\.[0-9]{1,2})?\Z"),
    st.sampled_from(
        [
            *("0", "-0", "0.00", "0.01", "0.001", "1e-400", "1e400", "1E2", "-1", "NaN", "inf"),
            *("999999.99", "1000000", "1000000.01", "999999999999.9999", "1000000000000"),
            *("9" * 400, "0." + "0" * 400 + "1", "1_000", " 5", "٣", "1,5", "0x10", "+5"),
        ]
    ),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.booleans(),
    st.none(),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
)
_id_chars = st.characters(codec="utf-8", exclude_categories=("Cs",))
_ids = st.one_of(
    st.sampled_from(CUSTOMERS),
    st.text(_id_chars, min_size=0, max_size=12),
    st.text(_id_chars, min_size=100, max_size=200),
    st.sampled_from(["{p0}", "a b", "a\x00b", "a\u200bb", "🛒" * 32, "🛒" * 33, "x" * 128]),
    st.integers(),
    st.none(),
)
_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))
_nested = st.recursive(
    _json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)


def _dumps(value: Any) -> bytes:
    """JSON as any producer might write it: big integers, NaN, non-ASCII text as is
    (orjson refuses the first two)."""
    return json.dumps(value, ensure_ascii=False).encode()


@st.composite
def _payload(draw: st.DrawFn) -> bytes | None:
    """One message value: mostly a near-valid purchase or refund with a few fields odd."""
    shape = draw(st.integers(0, 19))
    if shape == 0:
        return draw(st.one_of(st.none(), st.binary(max_size=64)))
    if shape == 1:
        return _dumps(draw(_nested))
    if shape == 2:  # a nesting deeper than any parser allows
        depth = draw(st.integers(100, 5000))
        return b'{"event_id":' * depth + b"1" + b"}" * depth
    refund = draw(st.integers(0, 2)) == 0
    ev: dict[str, Any] = {
        "event_id": f"e{draw(st.integers(0, 60))}",
        "customer_id": draw(st.sampled_from(CUSTOMERS)),
        "order_id": draw(st.sampled_from(ORDERS)),
        "occurred_at": draw(st.one_of(_recent, _recent, _edge_times)),
        "amount": draw(st.from_regex(r"\A[1-9][0-9]{0,3}(\.[0-9]{1,2})?\Z")),
        "currency": "CNY",
    }
    if refund:
        ev["kind"] = "refund"
        ev["refund_of"] = draw(st.sampled_from(ORDERS))
    elif draw(st.booleans()):
        ev["kind"] = "purchase"
    if draw(st.booleans()):
        ev["store_id"] = draw(st.sampled_from(["s1", "店-9"]))
    if draw(st.booleans()):
        ev["channel"] = draw(st.text(max_size=70))
    odd = set()
    if draw(st.booleans()):  # else only the time may be odd
        odd = draw(st.sets(st.sampled_from([*ev, "extra", "drop", "nest", "kind"]), max_size=3))
    for f in odd:
        if f in ("event_id", "customer_id", "order_id", "refund_of", "store_id"):
            ev[f] = draw(_ids)
        elif f == "occurred_at":
            ev[f] = draw(_times)
        elif f == "amount":
            ev[f] = draw(_amounts)
        elif f == "currency":
            ev[f] = draw(st.sampled_from(["USD", "JPY", "cny", "XYZ", "", 156, None]))
        elif f == "kind":
            ev[f] = draw(st.sampled_from(["refund", "purchase", "gift", "Refund", 1, None]))
        elif f == "extra":
            ev[draw(st.text(max_size=10))] = draw(_nested)
        elif f == "drop" and ev:
            ev.pop(draw(st.sampled_from(sorted(ev))))
        elif f == "nest":
            ev[draw(st.sampled_from(sorted(ev) or ["x"]))] = draw(_nested)
    raw = _dumps(ev)
    size = draw(st.sampled_from([*["as is"] * 12, "cut", "pad", "limit", "over"]))
    if size == "cut":
        return raw[: draw(st.integers(0, len(raw)))]
    if size == "pad":  # whitespace: still the same JSON
        return b" " * draw(st.integers(0, 2000)) + raw + b"\n"
    if size in ("limit", "over"):  # right at RFM_MAX_MESSAGE_BYTES, or one byte over
        target = 65_536 + (size == "over")
        return raw + b" " * max(0, target - len(raw))
    return raw


# ---------------------------------------------------------------------- the test
@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    """A loop of the test's own: hypothesis runs examples synchronously."""
    with asyncio.Runner() as r:
        yield r


def _verdict(rig: Rig, raw: bytes | None) -> str | None:
    """The validator's error class for ``raw``, or None if it accepts it."""
    try:
        rig.processor.validator.event(raw, rig.clock.now_ms())
    except InvalidEvent as exc:
        return exc.error_class
    return None


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(_payload(), min_size=1, max_size=40))
def test_every_payload_is_applied_or_dead_lettered_with_a_documented_reason(
    runner: asyncio.Runner, redis_url: str, batch: list[bytes | None]
) -> None:
    # a namespace per example: each starts from new customers (first purchases) and NOW
    rig = runner.run(make_rig(redis_url, to_ms(NOW), decay_timer="false"))
    try:
        _check(runner, rig, batch)
    finally:
        runner.run(rig.close())


def _check(runner: asyncio.Runner, rig: Rig, batch: list[bytes | None]) -> None:
    verdicts = [_verdict(rig, raw) for raw in batch]
    msgs = runner.run(rig.feed(batch))
    letters = list(rig.outputs.letters)

    assert runner.run(rig.committed()) == msgs[-1].offset
    classes = [d["error_class"] for d in letters]
    assert "ProcessingError" not in classes, letters
    assert set(classes) <= DOCUMENTED, set(classes) - DOCUMENTED
    offsets = [d["offset"] for d in letters]
    assert len(offsets) == len(set(offsets)), "a message dead-lettered twice"
    by_offset = {d["offset"]: d for d in letters}
    accepted: list[Event] = []
    for m, verdict in zip(msgs, verdicts, strict=True):
        d = by_offset.get(m.offset)
        if d is not None:  # the original message, whole
            assert base64.b64decode(d["value_b64"] or "") == (m.value or b"")
        if verdict is not None:  # refused by validation: dead-lettered, with that reason
            assert d is not None and d["error_class"] == verdict, (m, verdict, d)
            continue
        ev = rig.processor.validator.event(m.value, rig.clock.now_ms())
        accepted.append(ev._replace(ref=ref_of(m)) if isinstance(ev, Refund) else ev)
        if d is not None:  # accepted, then refused by the refund rules
            assert d["error_class"].startswith("Refund"), d
    event(f"accepted: {'none' if not accepted else 'some' if len(accepted) < 5 else '5+'}")
    for cls in set(classes):
        event(f"dead letter: {cls}")
    # what Redis holds is the accepted events applied once, in one pass, by the pure engine
    want: dict[str, CustomerState] = {}
    build_engine(rig.settings).apply_events(want, accepted)
    got = {c: runner.run(rig.store.get_state(0, c)) for c in want}
    assert got == want

    # time runs far ahead: every decay and held-refund expiry fires and is encoded
    rig.clock.advance(400 * 86_400_000)
    runner.run(rig.processor.run_due(0))
    late = [d["error_class"] for d in rig.outputs.letters[len(letters) :]]
    for cls in set(late):
        event(f"dead letter after the wait: {cls}")
    assert set(late) <= {"RefundUnknownOrder", "RefundExceedsOrder"}, late
    # and every transition committed is in the published contract
    outbox = runner.run(rig.store.outbox_read(0, 100_000))
    event(f"transitions: {'none' if not outbox else 'some'}")
    for _, _, payload in outbox:
        TRANSITION.validate(orjson.loads(payload))


def test_the_documented_classes_are_read_from_the_readme() -> None:
    """The fuzz test's notion of 'documented' is the README table itself."""
    assert {"EventTimeOutOfRange", "ProcessingError", "MissingField", "UnexpectedField"} <= (
        DOCUMENTED
    )
