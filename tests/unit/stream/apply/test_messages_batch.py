"""``Batch``'s offset questions (first, last, after, unbroken_from) answer what their plain
definitions over every message do, whatever the order and mix of the batch (a guard for
whoever makes them faster: C-level maps and an all-fresh shortcut were tried for issue #21
and saved ~50 ns per record, not worth their lines)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from segments.model import Purchase
from stream.apply.messages import Batch, Msg

_offsets = st.lists(st.integers(0, 60), max_size=12)


@st.composite
def batches(draw: st.DrawFn) -> Batch:
    def msg(o: int) -> Msg:
        return Msg(0, o, b"k", b"v")

    return Batch(
        [(msg(o), Purchase("c", f"e{o}", o, 1, "o")) for o in draw(_offsets)],
        [(msg(o), "InvalidId", "bad") for o in draw(_offsets)],
        [(msg(o), 1) for o in draw(_offsets)],
        [msg(o) for o in draw(_offsets)],
    )


def _all(b: Batch) -> list[int]:
    return [
        *(x[0].offset for x in b.good),
        *(x[0].offset for x in b.bad),
        *(x[0].offset for x in b.misrouted),
        *(m.offset for m in b.outside),
    ]


def _lists(b: Batch) -> tuple[list[Any], ...]:
    return (b.good, b.bad, b.misrouted, b.outside)


@given(batches(), st.integers(-1, 61))
def test_the_offset_questions_answer_their_definitions(b: Batch, cut: int) -> None:
    offsets = _all(b)
    assert b.last == max(offsets, default=None)
    if offsets:
        assert b.first == min(offsets)
    fresh = b.after(cut)
    assert _lists(fresh) == (
        [x for x in b.good if x[0].offset > cut],
        [x for x in b.bad if x[0].offset > cut],
        [x for x in b.misrouted if x[0].offset > cut],
        [m for m in b.outside if m.offset > cut],
    )
    # a copy, never the batch's own lists
    assert all(x is not y for x, y in zip(_lists(fresh), _lists(b), strict=True))
    if offsets:
        start = min(offsets)
        run, reread = b.unbroken_from(start)
        assert (_lists(run), reread) == _unbroken_from(b, start)


def _unbroken_from(b: Batch, start: int) -> tuple[tuple[list[Any], ...], int | None]:
    """The plain definition: the run of offsets without a hole from ``start``, each list
    sorted by offset; where to re-read from if anything lay beyond the hole."""
    present = set(_all(b))
    end = start - 1
    while end + 1 in present:
        end += 1
    cut = None if end >= max(present) else end + 1
    lists = (
        sorted((x for x in b.good if x[0].offset <= end), key=lambda x: x[0].offset),
        sorted((x for x in b.bad if x[0].offset <= end), key=lambda x: x[0].offset),
        sorted((x for x in b.misrouted if x[0].offset <= end), key=lambda x: x[0].offset),
        sorted((m for m in b.outside if m.offset <= end), key=lambda m: m.offset),
    )
    return lists, cut
