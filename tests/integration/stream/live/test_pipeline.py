"""End to end on a real broker and a real redis-server, with real worker processes."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import UTC, datetime

import aiohttp
import jsonschema
import pytest

from schemas.export import JSON_DIR
from segments import CustomerState
from stream.demo.embedded import free_port
from tests.support.corpus import bad_inputs
from tests.support.harness import Cluster, expected, history, purchase, story

pytestmark = [pytest.mark.integration]
# the tests where Redis Cluster changes what happens (slots, SCAN per node, restarts) also
# run on one: marked redis_cluster_too one by one


async def final_states(
    cluster: Cluster, produced: list[tuple[int, int]], events: list[dict]
) -> dict[str, CustomerState]:
    store = cluster.store()
    try:
        part = {e["customer_id"]: p for e, (p, _) in zip(events, produced, strict=True)}
        return {c: await store.get_state(p, c) for c, p in part.items()}
    finally:
        await store.close()


@pytest.mark.redis_cluster_too
async def test_purchases_become_transitions_that_validate(cluster: Cluster) -> None:
    settings = await cluster.ensure_topics(decay_timer="false")
    cluster.start_worker(decay_timer="false")
    events = history(customers=60, events=400, seed=1)
    produced = await cluster.produce(events)
    want_states, want = expected(events, settings)

    got = await cluster.transitions(lambda ts: len(ts) >= len(want), wait_s=60)
    await cluster.wait_applied(produced)

    validator = jsonschema.Draft202012Validator(
        json.loads((JSON_DIR / "segment-transition.json").read_text()),
        format_checker=jsonschema.FormatChecker(),
    )
    for t in got:
        validator.validate({k: v for k, v in t.items() if not k.startswith("_")})
        assert t["_key"] == t["customer_id"].encode()
        assert t["mode"] == "live"
    assert story(got) == story(want)
    assert sorted(t["transition_id"] for t in got) == sorted(t["transition_id"] for t in want)
    assert sum(t["cause"] == "first_purchase" for t in got) == len(want_states)
    assert await final_states(cluster, produced, events) == want_states


@pytest.mark.redis_cluster_too
async def test_kill_9_mid_stream_then_restart_loses_and_doubles_nothing(cluster: Cluster) -> None:
    settings = await cluster.ensure_topics(decay_timer="false", batch_max="25")
    events = history(customers=200, events=3000, seed=2)
    produced = await cluster.produce(events)
    want_states, want = expected(events, settings)
    last = {}
    for p, o in produced:
        last[p] = max(last.get(p, -1), o)

    worker = cluster.start_worker(decay_timer="false", batch_max="25")
    store = cluster.store()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            committed = await store.committed_offsets(last)
            if sum(o + 1 for o in committed.values()) >= 300:
                break
            await asyncio.sleep(0.01)
        worker.kill()  # SIGKILL: no shutdown hook, in-flight batch lost mid-commit
        committed = await store.committed_offsets(last)
    finally:
        await store.close()
    assert any(committed[p] < last[p] for p in last), "worker finished before it was killed"

    cluster.start_worker(decay_timer="false", batch_max="25")
    await cluster.wait_applied(produced)
    assert await final_states(cluster, produced, events) == want_states

    got = await cluster.transitions(lambda ts: len({t["transition_id"] for t in ts}) >= len(want))
    assert {t["transition_id"] for t in got} == {t["transition_id"] for t in want}
    # at-least-once delivery, but per customer the distinct story is exactly the expected one
    deduped = list({t["transition_id"]: t for t in got}.values())
    assert story(deduped) == story(want)


async def test_malformed_messages_go_to_the_dead_letter_topic_and_the_stream_goes_on(
    cluster: Cluster,
) -> None:
    settings = await cluster.ensure_topics()
    port = free_port()
    cluster.start_worker(refund_hold="1s", http_port=str(port))  # unknown order: waits 1 s
    now = datetime.now(UTC)
    bad = [
        b"{not json",
        json.dumps(purchase("c1", 1, now, amount="-3")).encode(),
        json.dumps({**purchase("c1", 2, now), "currency": "USD"}).encode(),
        json.dumps({**purchase("c1", 3, now), "kind": "refund", "refund_of": "x"}).encode(),
    ]
    produced = await cluster.produce(bad, key=b"c1")
    produced += await cluster.produce([purchase("c1", 4, now)])

    letters = await cluster.read(settings.dlq_topic, lambda xs: len(xs) >= 4)
    assert sorted(d["error_class"] for d in letters) == sorted(
        ["MalformedJSON", "InvalidAmount", "CurrencyMismatch", "RefundUnknownOrder"]
    )
    validator = jsonschema.Draft202012Validator(
        json.loads((JSON_DIR / "dead-letter.json").read_text())
    )
    for d in letters:
        validator.validate({k: v for k, v in d.items() if not k.startswith("_")})
        assert d["topic"] == settings.purchases_topic and d["error_message"]
    assert {(d["partition"], d["offset"]) for d in letters} == set(produced[:4])

    got = await cluster.transitions(lambda ts: len(ts) >= 1)
    assert [(t["customer_id"], t["cause"], t["event_id"]) for t in got] == [
        ("c1", "first_purchase", "c1-e4")
    ]
    await cluster.wait_applied(produced)

    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
            assert r.status == 200
            text = await r.text()
        async with http.get(f"http://127.0.0.1:{port}/health") as r:
            assert r.status == 200 and (await r.json())["redis_up"] is True
    for line in [
        'rfm_dead_letters_total{reason="MalformedJSON"} 1',
        'rfm_dead_letters_total{reason="RefundUnknownOrder"} 1',
        "rfm_events_total 2",  # the refund (held) and the good purchase
        "rfm_redis_up 1",
        "rfm_owned_partitions 4",
    ]:
        assert line in text.splitlines(), (line, text)


@pytest.mark.redis_cluster_too
async def test_redis_not_kafka_decides_where_a_restarted_worker_resumes(cluster: Cluster) -> None:
    """The group's Kafka offsets are past every event, but Redis lost the namespace
    (restored from an empty backup): the worker must seek back and rebuild it."""
    settings = await cluster.ensure_topics(decay_timer="false")
    events = history(customers=30, events=200, seed=3)
    produced = await cluster.produce(events)
    want_states, _ = expected(events, settings)
    worker = cluster.start_worker(decay_timer="false")
    await cluster.wait_applied(produced)
    await cluster.wait_group_committed(produced)  # the premise: Kafka says 'all read'
    worker.stop()

    store = cluster.store()
    try:
        await store.connect()  # a cluster client, if it is one, before using .client
        keys = [k async for k in store.client.scan_iter(f"rfm:{{{settings.namespace}:*")]
        await store.client.delete(*keys)
    finally:
        await store.close()

    cluster.start_worker(decay_timer="false")
    await cluster.wait_applied(produced)
    assert await final_states(cluster, produced, events) == want_states


async def test_bad_input_corpus_on_the_real_stream(cluster: Cluster) -> None:
    """Every corpus case reaches the DLQ with its reason; the good events around them
    are applied; nothing else is dropped."""
    settings = await cluster.ensure_topics()
    cluster.start_worker()
    now = datetime.now(UTC)
    cases = bad_inputs(now)
    stream: list[dict | bytes] = []
    for i, case in enumerate(cases):
        stream.append(purchase(f"good{i % 7}", i, now, "20"))
        stream.append(case.raw)
    stream.append(purchase("good-last", 999, now, "20"))
    produced = await cluster.produce(stream, key=b"c-bad")

    letters = await cluster.read(settings.dlq_topic, lambda xs: len(xs) >= len(cases))
    await cluster.wait_applied(produced)
    assert len(letters) == len(cases)
    by_offset = {(d["partition"], d["offset"]): d for d in letters}
    for case, where in zip(cases, produced[1::2], strict=False):
        d = by_offset[where]
        assert d["error_class"] == case.error_class, (case.name, d["error_message"])
        assert case.fragment in d["error_message"], (case.name, d["error_message"])
        assert base64.b64decode(d["value_b64"]) == case.raw
    good = [i for i, e in enumerate(stream) if isinstance(e, dict)]
    states = await final_states(cluster, [produced[i] for i in good], [stream[i] for i in good])
    assert sum(s.frequency for s in states.values()) == len(cases) + 1
