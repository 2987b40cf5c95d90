"""A store re-pointed at another namespace after it was made reads that namespace with all
its readers. The worker and the read-side commands do this once they learn a name's physical
namespace (a promoted backfill); the tallies and scans once kept a copy of the keys they were
made with, so after a promote ``/segments`` and the sweeps read the retired namespace."""

from __future__ import annotations

import orjson
import pytest

from schemas.times import to_ms
from state.keys import Keys
from state.store import RedisStore
from tests.support.harness import T0, purchase
from tests.support.processor_rig import make_rig

pytestmark = [pytest.mark.integration, pytest.mark.redis_cluster_too]


async def test_tallies_and_scans_follow_the_store_to_its_new_namespace(redis_url: str) -> None:
    rig = await make_rig(redis_url, to_ms(T0))
    try:
        await rig.feed([orjson.dumps(purchase(f"c{i}", 1, T0, "500")) for i in range(3)])
        built = rig.settings.namespace
        store = RedisStore.from_url(redis_url, rig.settings.key_prefix, "live-name")
        try:
            store.keys = Keys(rig.settings.key_prefix, built)  # the name resolved to its build
            counts = await store.tallies.segment_counts([0])
            assert sum(counts["rfm8"].values()) == 3
            found = {s.customer_id for s in await store.scans.scan_states()}
            assert found == {"c0", "c1", "c2"}
        finally:
            await store.close()
    finally:
        await rig.store.close()
