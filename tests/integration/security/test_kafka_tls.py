"""Kafka over real TLS (stunnel in front of Tansu, certificates from openssl): the worker and
the backfill work through it, and a TLS or SASL configuration the broker refuses stops them
with one line (issue #17).

What is not tested here, because no broker on this machine enforces it: a *successful*
SASL login (Tansu 0.6.0's memory storage knows no SCRAM user and has no PLAIN; the
research's §2). The refused login is tested against Tansu ``--authentication``, and that
the SASL options reach every client is tests/unit/stream/kafka/test_security.py's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support.harness import ROOT, Cluster, WorkerProc, expected, history, story
from tests.support.tls import (
    Pki,
    TlsKafka,
    make_pki,
    ssl_env,
    start_stunnel,
    start_tansu_authenticating,
    tls_cluster,
    tls_kafka,
)

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsKafka]:
    with tls_kafka(pki, tmp_path_factory.mktemp("tls-kafka")) as kafka:
        yield kafka


def refused(worker: WorkerProc, line_start: str) -> str:
    """The worker stopped at once with exit code 2 and one line starting ``line_start``."""
    code = worker.proc.wait(60)
    text = worker.text()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert code == 2, text
    assert "Traceback" not in text
    assert len(lines) == 1, text
    assert lines[0].startswith(line_start), text
    return lines[0]


def backfill(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", "backfill", "--no-progress", *args],
        env={**os.environ, **cluster.env(), "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


async def test_worker_and_backfill_run_over_tls(
    tls: TlsKafka, pki: Pki, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Purchases in over TLS, transitions out over TLS, as on plaintext; then a backfill
    (two --jobs children) reads the topic and publishes over TLS too."""
    cluster = tls_cluster(tls.bootstrap, redis_url, tmp_path_factory, **ssl_env(pki))
    try:
        settings = await cluster.ensure_topics(decay_timer="false")
        cluster.start_worker(decay_timer="false")
        events = history(customers=40, events=300, seed=17)
        produced = await cluster.produce(events)
        want_states, want = expected(events, settings)

        got = await cluster.transitions(lambda ts: len(ts) >= len(want), wait_s=60)
        await cluster.wait_applied(produced)
        assert story(got) == story(want)
        assert sorted(t["transition_id"] for t in got) == sorted(t["transition_id"] for t in want)
        assert "Traceback" not in cluster.workers[0].text()
        assert tls.stunnel.log_path is not None
        assert "accepted connection" in tls.stunnel.log_path.read_text()  # through TLS

        ns, topic = f"b{cluster.suffix}", f"b-{cluster.suffix}"
        done = backfill(cluster, "--into", ns, "--emit-topic", topic, "--jobs", "2")
        assert done.returncode == 0, done.stderr
        assert f"backfilled {len(events):,} events" in done.stdout, done.stdout
        assert ", 2 processes" in done.stdout, done.stdout  # the --jobs children over TLS too
        store = cluster.store(namespace=ns)
        try:
            states = {s.customer_id: s for s in await store.scans.scan_states()}
        finally:
            await store.close()
        assert {c: (s.frequency, s.monetary) for c, s in states.items()} == {
            c: (s.frequency, s.monetary) for c, s in want_states.items()
        }
        back = await cluster.read(topic, lambda ts: len(ts) >= len(want_states), wait_s=30)
        assert {t["mode"] for t in back} == {"backfill"}
        assert {t["customer_id"] for t in back if t["cause"] == "first_purchase"} == set(
            want_states
        )
    finally:
        cluster.discard()


@pytest.mark.parametrize("tool", ["worker", "backfill"])
async def test_an_untrusted_broker_certificate_stops_with_one_line(
    tool: str, tls: TlsKafka, pki: Pki, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cluster = tls_cluster(
        tls.bootstrap, redis_url, tmp_path_factory, **ssl_env(pki, pki.other_ca_crt)
    )
    want = (
        f"rfm-stream: kafka at {tls.bootstrap}: TLS certificate not trusted "
        "(certificate verify failed: "
    )
    try:
        if tool == "worker":
            refused(cluster.start_worker(), want)
        else:
            done = backfill(cluster, "--into", f"b{cluster.suffix}")
            assert done.returncode == 2, done.stderr
            assert done.stderr.startswith(want), done.stderr
            assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    finally:
        cluster.discard()


async def test_a_certificate_for_another_host_stops_the_worker_with_one_line(
    tls: TlsKafka, pki: Pki, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The broker's certificate names localhost only; the worker dials 127.0.0.1."""
    workdir = tmp_path_factory.mktemp("dnsonly")
    tunnel = start_stunnel(workdir, tls.tansu.port, pki.server_dnsonly_crt, pki.server_key)
    try:
        cluster = tls_cluster(tunnel.address, redis_url, tmp_path_factory, **ssl_env(pki))
        try:
            line = refused(
                cluster.start_worker(),
                f"rfm-stream: kafka at {tunnel.address}: hostname mismatch (certificate verify "
                "failed: IP address mismatch",
            )
            assert "127.0.0.1" in line
        finally:
            cluster.discard()
    finally:
        tunnel.stop()


async def test_tls_to_a_plaintext_port_stops_the_worker_with_one_line(
    tls: TlsKafka, pki: Pki, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Tansu's own (plaintext) port takes the connection and never answers the handshake."""
    plain = tls.tansu.address
    cluster = tls_cluster(plain, redis_url, tmp_path_factory, **ssl_env(pki))
    try:
        refused(
            cluster.start_worker(),
            f"rfm-stream: kafka at {plain}: no answer to the TLS handshake in 10s (a plaintext "
            "port? RFM_KAFKA_SECURITY_PROTOCOL=SSL)",
        )
    finally:
        cluster.discard()


async def test_mutual_tls_with_and_without_a_client_certificate(
    pki: Pki, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with tls_kafka(pki, tmp_path_factory.mktemp("mtls"), client_ca=pki.ca_crt) as mtls:
        with_cert = ssl_env(
            pki, kafka_ssl_certfile=pki.client_crt, kafka_ssl_keyfile=pki.client_key
        )
        cluster = tls_cluster(mtls.bootstrap, redis_url, tmp_path_factory, **with_cert)
        try:
            settings = await cluster.ensure_topics(decay_timer="false")
            cluster.start_worker(decay_timer="false")
            events = history(customers=10, events=40, seed=3)
            produced = await cluster.produce(events)
            _, want = expected(events, settings)
            await cluster.wait_applied(produced)
            got = await cluster.transitions(lambda ts: len(ts) >= len(want), wait_s=60)
            assert story(got) == story(want)

            cluster.security = ssl_env(pki)  # the same, without the client certificate
            line = refused(
                cluster.start_worker(decay_timer="false"),
                f"rfm-stream: kafka at {mtls.bootstrap}: ",
            )
            # the TLS 1.3 alert, or only the close when it comes first: both name the cause
            assert "client certificate" in line, line
            assert "RFM_KAFKA_SSL_CERTFILE is not set" in line, line
        finally:
            cluster.discard()


@pytest.mark.parametrize("tool", ["worker", "backfill"])
async def test_a_refused_scram_login_stops_with_one_line(
    tool: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Tansu --authentication refuses every SCRAM login (aiokafka's KeyError 'v' path)."""
    broker = start_tansu_authenticating(tmp_path_factory.mktemp("tansu-auth"))
    try:
        cluster = tls_cluster(
            broker.address,
            redis_url,
            tmp_path_factory,
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism="SCRAM-SHA-256",
            kafka_sasl_username="rfm-worker",
            kafka_sasl_password="hunter2-secret",
        )
        want = (
            f"rfm-stream: kafka at {broker.address}: SASL authentication failed for user "
            "'rfm-worker' (SCRAM-SHA-256)"
        )
        try:
            if tool == "worker":
                worker = cluster.start_worker()
                assert refused(worker, want) == want
                assert "hunter2" not in worker.text()
            else:
                done = backfill(cluster, "--into", f"b{cluster.suffix}")
                assert (done.returncode, done.stderr) == (2, want + "\n")
                assert "hunter2" not in done.stdout + done.stderr
        finally:
            cluster.discard()
    finally:
        broker.stop()
