"""Every case of the bad-input corpus is rejected with its specific reason."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from schemas import load_settings
from schemas.errors import InvalidEvent
from schemas.times import to_ms
from stream.apply.validate import Validator
from tests.support.corpus import bad_inputs

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("case", bad_inputs(NOW), ids=lambda c: c.name)
def test_each_bad_input_has_its_reason(case) -> None:
    v = Validator(load_settings())
    with pytest.raises(InvalidEvent) as info:
        v.check(case.raw, to_ms(NOW))
    assert (info.value.error_class, case.fragment in info.value.message) == (
        case.error_class,
        True,
    ), info.value.message


def test_none_value_is_an_empty_message() -> None:
    with pytest.raises(InvalidEvent) as info:
        Validator(load_settings()).check(None, 0)
    assert info.value.error_class == "EmptyMessage"


def test_a_good_event_passes_and_keeps_exact_money() -> None:
    raw = orjson.dumps(
        {
            "event_id": "e",
            "customer_id": "顾客-7",
            "order_id": "o",
            "occurred_at": NOW.isoformat(),
            "amount": "12.30",
            "currency": "CNY",
        }
    )
    ev = Validator(load_settings()).check(raw, to_ms(NOW))
    assert str(ev.amount) == "12.30" and ev.customer_id == "顾客-7"
