"""The worker end to end on secured infrastructure, both parts at once (issue #17's "done
when"): Kafka over TLS (stunnel in front of Tansu) and a TLS-only redis-server whose default
user is off, the worker logging in as the documented ACL user. Each part's refusals are
tested on their own in test_kafka_tls.py and test_redis_tls_acl.py."""

from __future__ import annotations

import pytest

from tests.support.harness import expected, history, story
from tests.support.secure_redis import start_secure_redis
from tests.support.tls import make_pki, ssl_env, tls_cluster, tls_kafka

pytestmark = [pytest.mark.integration]

PASSWORD = "worker-pw-e2e-5d"


async def test_a_worker_runs_end_to_end_on_a_tls_broker_and_a_tls_acl_redis(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    redis = start_secure_redis(pki, password=PASSWORD)
    try:
        with tls_kafka(pki, tmp_path_factory.mktemp("tls-kafka")) as kafka:
            # the test's own reads of Redis: the same ACL user, TLS files in the URL's query
            query = f"ssl_ca_certs={pki.ca_crt}&ssl_certfile={pki.client_crt}"
            reads = f"{redis.url()}?{query}&ssl_keyfile={pki.client_key}"
            cluster = tls_cluster(kafka.bootstrap, reads, tmp_path_factory, **ssl_env(pki))
            try:
                settings = await cluster.ensure_topics(decay_timer="false")
                worker = cluster.start_worker(
                    decay_timer="false",
                    redis_url=redis.url(),
                    redis_tls_ca_file=pki.ca_crt,
                    redis_tls_cert_file=pki.client_crt,
                    redis_tls_key_file=pki.client_key,
                )
                events = history(customers=40, events=300, seed=23)
                produced = await cluster.produce(events)
                want_states, want = expected(events, settings)

                got = await cluster.transitions(lambda ts: len(ts) >= len(want), wait_s=60)
                await cluster.wait_applied(produced)
                assert story(got) == story(want)
                store = cluster.store()
                try:
                    owner = {
                        e["customer_id"]: p for e, (p, _) in zip(events, produced, strict=True)
                    }
                    got_states = {c: await store.get_state(p, c) for c, p in owner.items()}
                finally:
                    await store.close()
                assert got_states == want_states
                log = worker.text()
                assert "Traceback" not in log
                assert PASSWORD not in log
                assert kafka.stunnel.log_path is not None
                assert "accepted connection" in kafka.stunnel.log_path.read_text()
            finally:
                cluster.discard()
    finally:
        redis.stop()
