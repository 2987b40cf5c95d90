"""A namespace written by codec v2 keeps working: its hashes load as they are, and each is
rewritten as v3 by the customer's next commit, keeping the schedule's pointer."""

from __future__ import annotations

import pytest

from schemas.times import DAY_MS
from segments.model import CustomerState
from state import RedisStore
from state.codec import encode_state
from state.codec_v2 import encode_v2

pytestmark = [pytest.mark.integration]

T0 = 1_767_225_600_000


def windowed(cid: str) -> CustomerState:
    """A customer with what the shipped rules keep: four schemes' segments, two orders in
    the refund window and a purchase day older than them that only the window keeps."""
    return CustomerState(
        cid,
        3,
        900_000,
        T0 - 200 * DAY_MS,
        T0,
        T0,
        {"rfm8": "high_value", "rfm27": "champions", "pyramid": "vip", "alive": "active"},
        orders={
            f"{cid}-o2": [200_000, 250_000, T0 - 5 * DAY_MS],
            f"{cid}-o3": [300_000] * 2 + [T0],
        },
        days={
            (T0 - 200 * DAY_MS) // DAY_MS: [1, 400_000],
            (T0 - 5 * DAY_MS) // DAY_MS: [1, 200_000],
            T0 // DAY_MS: [1, 300_000],
        },
        stamp="a518adda4374/2",
        history=[["pyramid", "major", "vip", "purchase", T0]],
    )


async def test_a_v2_hash_loads_and_its_next_commit_rewrites_it_as_v3(store: RedisStore) -> None:
    s = windowed("c-7")
    v2 = dict(zip(*[iter(encode_v2(s))] * 2, strict=True))
    assert v2["a"] != encode_state(s)[1]  # the formats differ for this state
    claim = await store.claim(0)
    key = store.keys.customer(0, "c-7")
    await store.client.hset(key, mapping=v2)
    meta = await store.load(0, ["c-7"])
    assert meta.states == {"c-7": s}
    await store.commit(0, claim.epoch, meta.version, [s], {"c-7": T0 + 90 * DAY_MS}, [])
    assert await store.client.hgetall(key) == {"a": encode_state(s)[1], "u": str(T0 + 90 * DAY_MS)}
    assert (await store.load(0, ["c-7"])).states == {"c-7": s}
    assert await store.due(0, T0 + 90 * DAY_MS, 10) == ["c-7"]
