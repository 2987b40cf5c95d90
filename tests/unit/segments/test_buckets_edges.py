"""``Buckets`` holds its log edges (for ``index_one``) without that changing its value."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from segments.buckets import Buckets

ACCURACIES = st.sampled_from(["1/100", "1/10", "1/2", "1/5000", "0.0002"])


@given(ACCURACIES, st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=50))
def test_index_one_is_index_for_each_accuracy(a: str, values: list[int]) -> None:
    """Edges held per instance must be that instance's own (a table of another accuracy
    would put values in other buckets)."""
    b = Buckets.log(a)
    assert [b.index_one(v) for v in values] == b.index(np.array(values, np.int64)).tolist()


def test_the_held_edges_are_not_part_of_the_value() -> None:
    one, same = Buckets.log(0.01), Buckets("log", relative_accuracy=Fraction(1, 100))
    assert one == same and hash(one) == hash(same)
    assert repr(one) == "Buckets(kind='log', relative_accuracy=Fraction(1, 100), width=None)"
    assert one != Buckets.log(0.02)
    assert Buckets.linear(7).index_one(-1) == -1  # linear: no edges, floor division
