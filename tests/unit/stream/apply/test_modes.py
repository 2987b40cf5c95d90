"""The position fields named in stream.apply.modes are the ones the state layer writes."""

from __future__ import annotations

from state.forwarded import FORWARDED
from stream.apply.modes import STAGED


def test_the_staged_records_position_is_the_forwarded_stores_meta_field() -> None:
    # a Literal can't name state.forwarded.FORWARDED: the two spellings must agree
    assert STAGED == FORWARDED
