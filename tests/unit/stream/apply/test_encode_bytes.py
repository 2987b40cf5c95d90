"""The transition encoder's bytes are exactly the reference encoding's.

The reference is the straightforward encoding the batch memos (times, amounts, labels)
replaced, copied below: ``datetime.isoformat`` for each time, ``Scheme.label`` and
``from_units`` for each transition. The bytes on the transitions topic and in the outbox
are a contract (schemas/json/), so any drift fails here, byte for byte.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.money import from_units
from schemas.times import from_ms
from segments import Engine, Rfm8
from segments.ids import transition_id
from segments.model import NONE, TransitionDraft
from stream.apply.encode import TransitionEncoder
from stream.apply.modes import Mode

DAY = 86_400_000
ENGINE = Engine([Rfm8(90 * DAY, 2, 10_000_000), Rfm8(30 * DAY, 3, 5_000_000, name="short")])


def reference(engine: Engine, currency: str, mode: Mode, d: TransitionDraft, at: int) -> bytes:
    scheme = {s.name: s for s in engine.schemes}[d.scheme]

    def t(ms: int) -> str:
        return from_ms(ms).isoformat(timespec="milliseconds")

    bought = d.first_ms is not None
    snapshot: dict[str, Any] = {
        "recency_days": round((d.effective_ms - d.last_ms) / DAY, 6) if bought else 0.0,
        "frequency": d.frequency,
        "monetary": str(from_units(d.monetary)),
        "currency": currency,
        "first_purchase_at": t(d.first_ms) if d.first_ms is not None else None,
        "last_purchase_at": t(d.last_ms) if bought else None,
        "scores": d.scores,
    }
    doc = {
        "transition_id": transition_id(
            d.customer_id, d.scheme, d.from_segment, d.to_segment, d.effective_ms
        ),
        "customer_id": d.customer_id,
        "scheme": d.scheme,
        "from_segment": d.from_segment,
        "from_label": scheme.label(d.from_segment),
        "to_segment": d.to_segment,
        "to_label": scheme.label(d.to_segment),
        "cause": d.cause,
        "effective_at": t(d.effective_ms),
        "emitted_at": t(at),
        "mode": mode,
        "rules_version": engine.rules_version,
        "cut_version": None,
        "event_id": d.event_id,
        "snapshot": snapshot,
    }
    return orjson.dumps(doc)


TIMES = st.integers(-10 * 365 * DAY, 60 * 365 * DAY)
SEGMENTS = st.sampled_from([NONE, "high_value", "new", "drifting", "renamed_away"])


@st.composite
def drafts(draw: st.DrawFn) -> TransitionDraft:
    first = draw(st.none() | TIMES)
    last = draw(TIMES)
    return TransitionDraft(
        customer_id=draw(st.sampled_from(["c1", "c2", "客户3"])),
        scheme=draw(st.sampled_from(["rfm8", "short"])),
        from_segment=draw(SEGMENTS),
        to_segment=draw(SEGMENTS),
        cause=draw(st.sampled_from(["purchase", "recency_decay", "refund"])),
        effective_ms=draw(st.integers(last, last + 400 * DAY)),
        event_id=draw(st.none() | st.just("e1")),
        frequency=draw(st.integers(0, 10**6)),
        # a batch shares amounts and times often (the memos' hits) and not always
        monetary=draw(st.sampled_from([0, 1, 10_000, 12_500]) | st.integers(-(10**12), 10**15)),
        first_ms=first,
        last_ms=last,
        scores={"r": draw(st.integers(1, 2)), "f": 1, "m": 2},
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(drafts(), max_size=12), TIMES, st.sampled_from(["live", "backfill"]))
def test_encode_many_is_the_reference_byte_for_byte(
    batch: list[TransitionDraft], at: int, mode: Mode
) -> None:
    enc = TransitionEncoder(ENGINE, "CNY", mode)
    got = enc.encode_many(batch, at)
    assert got == [reference(ENGINE, "CNY", mode, d, at) for d in batch]
    assert [enc.encode(d, at) for d in batch] == got  # one at a time: fresh memos
