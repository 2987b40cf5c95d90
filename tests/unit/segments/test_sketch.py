"""The quantile summary: its error bound, exact merges and exact deletions.

Every bound is checked against numpy's ``np.quantile(..., method="inverted_cdf")`` on
the exact population, in integer arithmetic (``|est − x|·den ≤ num·x`` for accuracy
``num/den``), so a bucketing that is off by one unit anywhere fails.
"""

from __future__ import annotations

import math
from collections import defaultdict
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segments.sketch import (
    SMALL_DELTAS,
    ZERO_BUCKET,
    Buckets,
    _deltas_numpy,
    _deltas_small,
    deltas,
    merge,
    quantiles,
    size,
    summarize,
)

UNIT = 10_000  # fixed-point units per currency unit
DAY = 86_400_000
I64_MAX = int(np.iinfo(np.int64).max)
MONEY = Buckets.log(0.01)
ACCURACIES = ["0.5", "0.1", "0.01", "0.001"]


def within(buckets: Buckets, est: int, exact: int) -> bool:
    """The documented guarantee of ``quantiles`` for one answer."""
    if buckets.kind == "linear":
        return abs(est - exact) <= (buckets.width or 0) // 2
    if exact <= 0:
        return est == 0
    a = buckets.relative_accuracy or Fraction(0)
    return abs(est - exact) * a.denominator <= a.numerator * exact


def exact_quantiles(values: np.ndarray | list[int], qs: list[float]) -> list[int]:
    return [int(x) for x in np.quantile(np.asarray(values), qs, method="inverted_cdf")]


def move(pop: dict[int, int], rows: list[tuple[int, int | None]]) -> tuple[np.ndarray, ...]:
    """Apply ``(customer, new value or None = leaves)`` rows to ``pop``; the deltas' arrays."""
    old, old_p, new, new_p = [], [], [], []
    for c, v in rows:
        old.append(pop.get(c, 0))
        old_p.append(c in pop)
        new.append(0 if v is None else v)
        new_p.append(v is not None)
        if v is None:
            pop.pop(c, None)
        else:
            pop[c] = v
    return (
        np.array(old, dtype=np.int64),
        np.array(old_p, dtype=bool),
        np.array(new, dtype=np.int64),
        np.array(new_p, dtype=bool),
    )


@pytest.fixture(scope="module")
def population() -> dict[str, np.ndarray]:
    """A million customers: lognormal monetary (median 300.00, σ 1.2) and purchase counts."""
    rng = np.random.default_rng(20261123)
    monetary = np.rint(np.exp(rng.normal(np.log(300 * UNIT), 1.2, 1_000_000))).astype(np.int64)
    frequency = rng.geometric(0.35, 1_000_000).astype(np.int64)
    return {"monetary": monetary, "frequency": frequency}


# ---------------------------------------------------------------- the bucketing
@pytest.mark.parametrize("a", ACCURACIES)
def test_every_integer_is_within_a_of_its_representative(a: str) -> None:
    b = Buckets.log(a)
    x = np.arange(-3, 300_001, dtype=np.int64)
    idx = b.index(x)
    assert np.all(np.diff(idx) >= 0), "bucket order must be value order"
    reps = np.array([b.value(i) for i in range(int(idx.max()) + 1)], dtype=np.int64)
    est = reps[idx]
    acc = Fraction(a)
    pos = x > 0
    assert np.all(np.abs(est[pos] - x[pos]) * acc.denominator <= acc.numerator * x[pos])
    assert np.all(idx[~pos] == ZERO_BUCKET)
    assert np.all(est[~pos] == 0)
    # each representative lies in its own bucket
    assert np.array_equal(b.index(reps[1:]), np.arange(1, reps.size))
    # integers below (1-a)/a are their own buckets: represented exactly
    small = (x > 0) & (x * acc.numerator < acc.denominator - acc.numerator)
    assert np.array_equal(est[small], x[small])
    assert np.count_nonzero(small) == math.ceil((1 - acc) / acc) - 1


@pytest.mark.parametrize("a", ACCURACIES)
def test_no_more_buckets_than_ddsketch(a: str) -> None:
    # each bucket spans a ratio of at most γ = (1+a)/(1-a), like DDSketch's (γ^(k-1), γ^k],
    # so all of int64 needs at most ⌈log_γ(2^63)⌉ buckets (2,184 at 1%; we use 2,050)
    b = Buckets.log(a)
    acc = Fraction(a)
    gamma = (1 + acc) / (1 - acc)
    assert int(b.index(np.array([I64_MAX]))[0]) <= math.ceil(math.log(I64_MAX, gamma))
    x = np.arange(1, 3_000_001, dtype=np.int64)
    starts = np.flatnonzero(np.diff(b.index(x))) + 1  # positions where a new bucket begins
    lo, hi = x[starts[:-1]], x[starts[1:] - 1]  # complete buckets inside the range
    assert lo.size >= 10
    assert np.all(hi * gamma.denominator <= gamma.numerator * lo)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ACCURACIES), st.integers(1, I64_MAX))
def test_any_int64_is_within_a_of_its_representative(a: str, x: int) -> None:
    b = Buckets.log(a)
    est = b.value(int(b.index(np.array([x], dtype=np.int64))[0]))
    assert within(b, est, x)


def test_describe_is_canonical() -> None:
    assert Buckets.log(0.01).describe() == "log:a=1/100:int-edges"
    assert Buckets.log("1/100") == Buckets.log(0.01)
    assert Buckets.log(0.001).describe() != Buckets.log(0.01).describe()
    assert Buckets.linear(DAY).describe() == "linear:width=86400000"
    assert Buckets.linear(DAY).describe() != Buckets.linear(3_600_000).describe()


def test_bad_bucketings_and_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="relative accuracy"):
        Buckets.log(0)
    with pytest.raises(ValueError, match="relative accuracy"):
        Buckets.log(1)
    with pytest.raises(ValueError, match="width"):
        Buckets.linear(0)
    with pytest.raises(TypeError, match="integers"):
        MONEY.index(np.array([1.5]))
    with pytest.raises(ValueError, match="no int64 value"):
        MONEY.value(10_000)
    with pytest.raises(ValueError, match="no int64 value"):
        MONEY.value(-1)


# ---------------------------------------------------------------- convergence
def test_convergence_on_a_million_customers(population: dict[str, np.ndarray]) -> None:
    qs = [0.5, 0.8, 0.99, *np.linspace(0, 1, 101).tolist()]
    money = population["monetary"]
    est = quantiles(MONEY, summarize(MONEY, money), qs)
    exact = exact_quantiles(money, qs)
    bad = [(q, e, x) for q, e, x in zip(qs, est, exact, strict=True) if not within(MONEY, e, x)]
    assert not bad
    # purchase counts stay below (1-a)/a = 99, where every integer is its own bucket: exact
    freq = population["frequency"]
    assert quantiles(MONEY, summarize(MONEY, freq), qs) == exact_quantiles(freq, qs)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(ACCURACIES),
    st.lists(st.integers(0, 10**12), min_size=1, max_size=300),
    st.lists(st.floats(0, 1), min_size=1, max_size=20),
)
def test_quantiles_within_bound_at_any_q(a: str, values: list[int], qs: list[float]) -> None:
    b = Buckets.log(a)
    est = quantiles(b, summarize(b, values), qs)
    for e, x in zip(est, exact_quantiles(values, qs), strict=True):
        assert within(b, e, x)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 97), min_size=1, max_size=200),
    st.lists(st.floats(0, 1) | st.sampled_from([0.07, 0.29, 0.57, 0.1, 0.3]), max_size=20),
)
def test_rank_convention_is_numpys_inverted_cdf(values: list[int], qs: list[float]) -> None:
    # 1..98 are their own buckets (and 0 the zero bucket), so any rank slip shows as a wrong value
    # (q·n just above an integer in float64, like 0.07·100, included)
    assert quantiles(MONEY, summarize(MONEY, values), qs) == exact_quantiles(values, qs)


def test_rank_follows_numpys_float64_product() -> None:
    # 0.07·100 is 7.000000000000001 in float64: numpy takes rank 8, not 7
    b = Buckets.log(0.001)  # 1..998 are their own buckets
    values = list(range(1, 101))
    assert exact_quantiles(values, [0.07, 0.57]) == [8, 57]
    assert quantiles(b, summarize(b, values), [0.07, 0.57]) == [8, 57]


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from([DAY, 3_600_000, 7]),
    st.lists(st.integers(-(10**12), 2 * 10**12), min_size=1, max_size=300),
    st.lists(st.floats(0, 1), min_size=1, max_size=20),
)
def test_linear_buckets_of_epoch_ms(width: int, times: list[int], qs: list[float]) -> None:
    b = Buckets.linear(width)
    est = quantiles(b, summarize(b, times), qs)
    for e, x in zip(est, exact_quantiles(times, qs), strict=True):
        assert abs(e - x) <= width // 2
        assert within(b, e, x)


# ---------------------------------------------------------------- merge
def test_merge_of_four_partitions_is_the_summary_of_the_union(
    population: dict[str, np.ndarray],
) -> None:
    money = population["monetary"]
    part = np.random.default_rng(7).integers(0, 4, money.size)
    parts = [summarize(MONEY, money[part == p]) for p in range(4)]
    whole = summarize(MONEY, money)
    assert merge(*parts) == whole
    assert merge(*reversed(parts)) == whole
    assert size(merge(*parts)) == money.size
    qs = [0.5, 0.8, 0.99]
    assert quantiles(MONEY, merge(*parts), qs) == quantiles(MONEY, whole, qs)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(-5, 10**10)), min_size=1, max_size=200),
    st.lists(st.floats(0, 1), min_size=1, max_size=10),
)
def test_merge_is_exact_for_any_split(rows: list[tuple[int, int]], qs: list[float]) -> None:
    values = [v for _, v in rows]
    parts = [summarize(MONEY, [v for p, v in rows if p == k]) for k in range(4)]
    assert merge(*parts) == summarize(MONEY, values)
    assert quantiles(MONEY, merge(*parts), qs) == quantiles(MONEY, summarize(MONEY, values), qs)


def test_merge_rejects_negative_totals() -> None:
    summary = summarize(MONEY, [5 * UNIT, 7 * UNIT])
    lost = deltas(MONEY, [9 * UNIT], [True], [0], [False])  # removes a value never added
    with pytest.raises(ValueError, match="lost or applied twice"):
        merge(summary, lost)
    with pytest.raises(ValueError, match="lost or applied twice"):
        quantiles(MONEY, {3: -1, 4: 2}, [0.5])
    with pytest.raises(TypeError):
        merge({b"3": 1})  # type: ignore[dict-item]  # raw Redis bytes, not decoded


# ---------------------------------------------------------------- deletion
values = st.integers(-2, 10**10)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["0.5", "0.01"]),
    st.lists(st.tuples(st.integers(0, 11), st.none() | values), max_size=80),
    st.lists(st.integers(1, 9), min_size=1, max_size=8),
)
def test_updates_and_removals_give_the_summary_of_the_final_population(
    a: str, updates: list[tuple[int, int | None]], batch_sizes: list[int]
) -> None:
    b = Buckets.log(a)
    pop: dict[int, int] = {}
    # one Redis hash per partition (customer % 3): HINCRBY keeps fields that reach 0
    hashes: list[defaultdict[int, int]] = [defaultdict(int) for _ in range(3)]
    i = k = 0
    while i < len(updates):
        batch = updates[i : i + batch_sizes[k % len(batch_sizes)]]
        i, k = i + len(batch), k + 1
        for p, h in enumerate(hashes):
            for key, d in deltas(b, *move(pop, [r for r in batch if r[0] % 3 == p])).items():
                assert d != 0
                h[key] += d
                assert h[key] >= 0, "a count went negative"
        assert merge(*hashes) == summarize(b, list(pop.values()))
    assert size(merge(*hashes)) == len(pop)


def test_deltas_net_out_and_omit_unchanged_buckets() -> None:
    b = MONEY
    x = 300 * UNIT
    # moving within one bucket, or a customer absent before and after, writes nothing
    assert deltas(b, [x], [True], [x + 1], [True]) == {}
    assert deltas(b, [x], [False], [x], [False]) == {}
    one, two = int(b.index([x])[0]), int(b.index([2 * x])[0])
    assert deltas(b, [x, 2 * x], [True, False], [2 * x, 0], [True, True]) == {
        one: -1,
        two: 1,
        ZERO_BUCKET: 1,
    }
    # first purchase, then full refund: in and out again
    assert deltas(b, [0, x], [False, True], [x, 0], [True, False]) == {}
    with pytest.raises(ValueError, match="expected"):
        deltas(b, [x, x], [True], [x, x], [True, True])
    with pytest.raises(ValueError, match="new has"):
        deltas(b, [x], [True], [x, x], [True, True])


def test_deltas_of_a_large_batch_match_resummarising(population: dict[str, np.ndarray]) -> None:
    old = population["monetary"][:200_000]
    rng = np.random.default_rng(3)
    new = old + rng.integers(0, 500 * UNIT, old.size)
    old_p, new_p = rng.random(old.size) < 0.9, rng.random(old.size) < 0.9
    got = merge(summarize(MONEY, old[old_p]), deltas(MONEY, old, old_p, new, new_p))
    assert got == summarize(MONEY, new[new_p])


# ---------------------------------------------------------------- edge cases
def test_zero_and_negative_values_share_the_zero_bucket() -> None:
    b = MONEY
    assert b.index(np.array([0, -1, -(10**15)])).tolist() == [ZERO_BUCKET] * 3
    assert b.value(ZERO_BUCKET) == 0
    assert b.index(np.array([1])).tolist() == [ZERO_BUCKET + 1]
    s = summarize(b, [0, -3, 0, 5 * UNIT])
    assert s[ZERO_BUCKET] == 3
    assert quantiles(b, s, [0, 0.5, 0.75, 1]) == [0, 0, 0, b.value(b.index([5 * UNIT])[0])]


@pytest.mark.parametrize("x", [1, 97, 98, 12_345, 300 * UNIT, I64_MAX])
def test_single_element_and_all_equal(x: int) -> None:
    qs = [0, 0.01, 0.5, 0.99, 1]
    for n in (1, 1000):
        est = quantiles(MONEY, summarize(MONEY, [x] * n), qs)
        assert len(set(est)) == 1
        assert within(MONEY, est[0], x)


def test_q_zero_is_the_minimum_and_q_one_the_maximum() -> None:
    vals = [3, 50, 7 * UNIT, 10**9]
    est = quantiles(MONEY, summarize(MONEY, vals), [0, 1])
    assert est[0] == 3  # small integers are exact
    assert within(MONEY, est[1], 10**9)
    assert est[1] != quantiles(MONEY, summarize(MONEY, vals), [0.75])[0]


def test_empty_summary_and_bad_q_are_errors() -> None:
    with pytest.raises(ValueError, match="empty"):
        quantiles(MONEY, {}, [0.5])
    with pytest.raises(ValueError, match="empty"):
        quantiles(MONEY, {4: 0, 9: 0}, [0.5])  # HINCRBY leaves zero fields behind
    assert size({4: 0}) == 0
    s = summarize(MONEY, [1, 2, 3])
    for q in (-0.1, 1.1, float("nan")):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            quantiles(MONEY, s, [q])


def test_linear_day_buckets_edges() -> None:
    b = Buckets.linear(DAY)
    day = 20_000 * DAY  # a UTC midnight
    t = np.array([day, day + DAY - 1, day + DAY, day - 1, -1, 0], dtype=np.int64)
    assert b.index(t).tolist() == [20_000, 20_000, 20_001, 19_999, -1, 0]
    assert b.value(20_000) == day + DAY // 2
    times = [day + 1, day + 5 * 3_600_000, day + DAY - 1]
    assert quantiles(b, summarize(b, times), [0, 0.5, 1]) == [day + DAY // 2] * 3


BUCKETINGS = [
    Buckets.log("0.01"),
    Buckets.log("0.05"),
    Buckets.linear(86_400_000),
    Buckets.linear(7),
]
VALUES = st.one_of(
    st.integers(-(2**40), 2**40),
    st.integers(-5, 300),
    st.integers(2**62, 2**63 - 1),
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(BUCKETINGS),
    st.lists(st.tuples(VALUES, st.booleans(), VALUES, st.booleans()), max_size=SMALL_DELTAS),
)
def test_small_batches_counted_in_python_match_numpy(
    buckets: Buckets, rows: list[tuple[int, bool, int, bool]]
) -> None:
    """The plain-Python path for small batches gives exactly the numpy path's deltas
    (same buckets, same order), edges and int64 extremes included."""
    old = [r[0] for r in rows]
    old_in = [r[1] for r in rows]
    new = [r[2] for r in rows]
    new_in = [r[3] for r in rows]
    small = _deltas_small(buckets, old, old_in, new, new_in)
    big = _deltas_numpy(
        buckets,
        np.array(old, dtype=np.int64),
        np.array(old_in, dtype=bool),
        np.array(new, dtype=np.int64),
        np.array(new_in, dtype=bool),
    )
    assert small == big
    assert list(small) == list(big)
    assert [buckets.index_one(v) for v in old] == buckets.index(np.array(old, np.int64)).tolist()
