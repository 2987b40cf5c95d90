"""The backfill's event-time watermark moves in the same atomic commit as its offsets.

It once was written by a separate command after each batch's commit: a backfill killed
between the two resumed with the batch applied (its offsets committed) but the watermark
of the batch before, and fired each partition's final decays at that earlier time —
the decays due in between never fired in the backfill (the live timer fires them after
promotion, as live transitions: the flood a backfill must never cause).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from state.forwarded import FORWARDED
from state.store import RedisStore
from stream.apply.routing import partitioner
from stream.backfill.reader import WATERMARK
from stream.backfill.run import BackfillOptions, backfill_topic
from tests.integration.stream.backfill.test_backfill import KNOBS, comparable, states_of, timeline
from tests.support.harness import Cluster, purchase

pytestmark = pytest.mark.integration


class Killed(BaseException):
    """The process dies here: nothing after this point runs (not even ``except
    Exception`` handlers)."""


async def watermarks(cluster: Cluster, namespace: str, partitions: int) -> dict[int, str | None]:
    store = cluster.store(namespace=namespace)
    try:
        return {p: await store.meta_field(p, WATERMARK) for p in range(partitions)}
    finally:
        await store.close()


async def test_a_backfill_killed_right_after_its_last_commit_resumes_at_the_same_watermark(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = await cluster.ensure_topics(**KNOBS)
    produced = await cluster.produce(timeline(customers=400, events=800, seed=21))
    last = {}
    for p, offset in produced:
        last[p] = max(last.get(p, -1), offset)
    # killed right after the last commit of one partition: nothing after it raises its mark,
    # and most of its ~100 customers are not in that batch (only those are caught up there)
    victim = min(last)

    commit = RedisStore.commit
    killed_at: list[int] = []

    async def commit_then_die(self: RedisStore, partition: int, *args: object, **kw: object) -> int:
        version = await commit(self, partition, *args, **kw)  # type: ignore[arg-type]  # passed through as received
        offset = args[5] if len(args) > 5 else kw.get("offset")
        if partition == victim and offset == last[victim]:
            killed_at.append(version)
            raise Killed
        return version

    ns_a, ns_b = f"a{cluster.suffix}", f"b{cluster.suffix}"
    options = {"jobs": 1, "batch": 40, "progress": False}
    monkeypatch.setattr(RedisStore, "commit", commit_then_die)
    with pytest.raises(Killed):
        await backfill_topic(settings, BackfillOptions(namespace=ns_a, **options))  # type: ignore[arg-type]  # options: a dict of BackfillOptions fields
    monkeypatch.undo()
    assert killed_at, "the kill never came"
    store = cluster.store(namespace=ns_a)
    try:
        assert (await store.committed_offsets([victim]))[victim] == last[victim]
    finally:
        await store.close()

    await backfill_topic(settings, BackfillOptions(namespace=ns_a, **options))  # type: ignore[arg-type]  # options: a dict of BackfillOptions fields
    await backfill_topic(settings, BackfillOptions(namespace=ns_b, **options))  # type: ignore[arg-type]  # options: a dict of BackfillOptions fields
    # (the old order: about a dozen customers of the victim partition were left undecayed, e.g.
    # high_value where the uninterrupted run has them dormant)
    a, b = comparable(await states_of(cluster, ns_a)), comparable(await states_of(cluster, ns_b))
    assert {c: (a[c], b[c]) for c in a if a[c] != b[c]} == {}
    assert a.keys() == b.keys()
    marks_b = await watermarks(cluster, ns_b, settings.partitions)
    assert all(marks_b.values())
    assert await watermarks(cluster, ns_a, settings.partitions) == marks_b


async def test_a_backfill_killed_after_applying_a_staged_record_resumes_at_its_watermark(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The misrouted record staged for its home partition is the partition's latest event;
    the backfill dies right after the staged phase commits it. The resumed run has nothing
    staged left to apply, so only a watermark raised in that same commit gets there."""
    settings = await cluster.ensure_topics(**KNOBS)
    events = timeline(customers=200, events=400, seed=23)
    await cluster.produce(events)
    n = settings.partitions
    customer = events[0]["customer_id"]
    home = partitioner(settings.partitioner)(customer.encode(), n)
    latest = datetime.fromisoformat(events[-1]["occurred_at"]) + timedelta(days=3)
    late = purchase(customer, 10_000, latest, "99")
    await cluster.produce([late], key=customer.encode(), partition=(home + 1) % n)  # misrouted

    commit = RedisStore.commit
    killed: list[int] = []

    async def commit_then_die(self: RedisStore, partition: int, *args: object, **kw: object) -> int:
        version = await commit(self, partition, *args, **kw)  # type: ignore[arg-type]  # passed through as received
        position = args[6] if len(args) > 6 else kw.get("position")
        if partition == home and position == FORWARDED:
            killed.append(version)
            raise Killed
        return version

    ns_a, ns_b = f"a{cluster.suffix}", f"b{cluster.suffix}"
    options = {"jobs": 1, "batch": 40, "progress": False}
    monkeypatch.setattr(RedisStore, "commit", commit_then_die)
    with pytest.raises(Killed):
        await backfill_topic(settings, BackfillOptions(namespace=ns_a, **options))  # type: ignore[arg-type]  # options: a dict of BackfillOptions fields
    monkeypatch.undo()
    assert killed, "the staged record was never committed"

    await backfill_topic(settings, BackfillOptions(namespace=ns_a, **options))  # type: ignore[arg-type]  # options: a dict of BackfillOptions fields
    await backfill_topic(settings, BackfillOptions(namespace=ns_b, **options))  # type: ignore[arg-type]  # options: a dict of BackfillOptions fields
    marks_a = await watermarks(cluster, ns_a, n)
    marks_b = await watermarks(cluster, ns_b, n)
    assert marks_b[home] == str(int(latest.timestamp() * 1000))
    assert marks_a == marks_b
    a, b = comparable(await states_of(cluster, ns_a)), comparable(await states_of(cluster, ns_b))
    assert {c: (a[c], b[c]) for c in a if a[c] != b[c]} == {}
