"""The worker and the CLI on a secured Redis: TLS only, client certificates, the documented ACL.

A real ``rfm-stream worker`` against a redis-server with ``--port 0 --tls-port P``, its
certificate signed by a test CA, ``tls-auth-clients yes``, and a user holding exactly
:data:`tests.support.secure_redis.WORKER_ACL` (the default user off). The TLS files reach
the worker as ``RFM_REDIS_TLS_*`` settings, not in the URL. Configuration errors (wrong
password, untrusted certificate, an ACL without a command the worker needs) end the
process with one line and exit code 2; a Redis that is down is still waited for.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis

from stream.demo.embedded import free_port
from tests.support.harness import (
    ROOT,
    Cluster,
    WorkerProc,
    expected,
    history,
    isolated_cluster,
    new_cluster,
    story,
)
from tests.support.secure_redis import (
    CLUSTER_EXTRA_ACL,
    WORKER_ACL,
    Pki,
    SecureRedis,
    make_pki,
    start_secure_redis,
)

pytestmark = [pytest.mark.integration]

PASSWORD = "worker-pw-7c1e"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def secure(pki: Pki) -> Iterator[SecureRedis]:
    server = start_secure_redis(
        pki,
        password=PASSWORD,
        # the same ACL without XRANGE: the relay can't read an outbox (a run-time NOPERM)
        users={"no-xrange": f">{PASSWORD} {WORKER_ACL.replace(' +xrange', '')}"},
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tls_cluster(
    kafka_bootstrap: str, secure: SecureRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Topics, group and namespace of one test; the harness's own reads go through the
    worker's ACL user too (TLS files in the URL's query), the worker gets them as settings."""
    p = secure.pki
    query = f"ssl_ca_certs={p.ca_crt}&ssl_certfile={p.client_crt}&ssl_keyfile={p.client_key}"
    reads = f"{secure.url()}?{query}"
    c = new_cluster(kafka_bootstrap, reads, tmp_path_factory, "tls-workers")
    try:
        yield c
    finally:
        c.discard()


def tls_env(secure: SecureRedis, **changes: str) -> dict[str, str]:
    """The worker's TLS/ACL settings (as ``Cluster.start_worker`` overrides)."""
    p = secure.pki
    env = {
        "redis_url": secure.url(),
        "redis_tls_ca_file": p.ca_crt,
        "redis_tls_cert_file": p.client_crt,
        "redis_tls_key_file": p.client_key,
    }
    env.update(changes)
    return env


def run_cli(
    cluster: Cluster, args: list[str], timeout: float = 60, **overrides: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RFM_")}
    env.update(cluster.env(**overrides))
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


def one_line_exit(cluster: Cluster, overrides: dict[str, str], timeout: float = 45) -> str:
    """Start a worker that must refuse to run: exit 2, one ``rfm-stream:`` line naming the
    cause, no traceback, the password nowhere. Returns that line."""
    w = cluster.start_worker(**overrides)
    try:
        rc = w.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        w.kill()
        raise AssertionError(
            f"worker still running after {timeout}s:\n{w.text()[-3000:]}"
        ) from None
    out = w.text()
    assert rc == 2, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert PASSWORD not in out and "wrong-pw" not in out, out[-3000:]
    lines = [line for line in out.splitlines() if line.startswith("rfm-stream:")]
    assert len(lines) == 1, out[-3000:]
    return lines[0]


async def acl_log(secure: SecureRedis) -> list[str]:
    """What the ACL refused since the last reset, as ``reason:object`` (admin view)."""
    admin = aioredis.Redis.from_url(secure.admin_url(), decode_responses=True)
    try:
        entries = await admin.acl_log()
        return [f"{e['reason']}:{e['object']}" for e in entries if e["username"] != "admin"]
    finally:
        await admin.aclose()


async def acl_log_reset(secure: SecureRedis) -> None:
    admin = aioredis.Redis.from_url(secure.admin_url(), decode_responses=True)
    try:
        await admin.acl_log_reset()
    finally:
        await admin.aclose()


async def test_worker_end_to_end_under_tls_and_the_documented_acl(
    tls_cluster: Cluster, secure: SecureRedis
) -> None:
    cluster = tls_cluster
    await acl_log_reset(secure)
    settings = await cluster.ensure_topics(decay_timer="false")
    worker = cluster.start_worker(decay_timer="false", **tls_env(secure))
    events = history(customers=40, events=300, seed=17)
    produced = await cluster.produce(events)
    want_states, want = expected(events, settings)

    got = await cluster.transitions(lambda ts: len(ts) >= len(want), wait_s=60)
    await cluster.wait_applied(produced, check=lambda: assert_alive(worker))
    assert story(got) == story(want)
    store = cluster.store()
    try:
        part = {e["customer_id"]: p for e, (p, _) in zip(events, produced, strict=True)}
        assert {c: await store.get_state(p, c) for c, p in part.items()} == want_states
    finally:
        await store.close()

    log = worker.text()
    assert "eviction check skipped: redis refused CONFIG GET maxmemory-policy" in log
    assert "listpack check skipped: redis refused CONFIG GET hash-max-listpack-value" in log
    assert PASSWORD not in log
    # the only commands the ACL refused the worker: the two checks' CONFIG GET and the
    # cluster probe's INFO, all answered by a warning
    assert set(await acl_log(secure)) <= {"command:info", "command:config|get"}

    # the read-side commands work under the same user
    customer = events[0]["customer_id"]
    shown = run_cli(cluster, ["inspect", customer, "--json"], **tls_env(secure))
    assert shown.returncode == 0, shown.stderr
    assert orjson.loads(shown.stdout)["customer_id"] == customer
    segs = run_cli(cluster, ["segments", "--json"], **tls_env(secure))
    assert segs.returncode == 0, segs.stderr
    assert set(await acl_log(secure)) <= {"command:info", "command:config|get"}


def assert_alive(worker: WorkerProc) -> None:
    if worker.proc.poll() is not None:
        raise AssertionError(f"worker exited ({worker.proc.returncode}):\n{worker.text()[-3000:]}")


async def test_wrong_password_stops_the_worker_with_one_line(
    tls_cluster: Cluster, secure: SecureRedis
) -> None:
    await tls_cluster.ensure_topics()
    line = one_line_exit(tls_cluster, tls_env(secure, redis_url=secure.url(password="wrong-pw")))
    assert line.startswith(
        f"rfm-stream: redis at 127.0.0.1:{secure.port} refused the login (WRONGPASS"
    )


async def test_unknown_user_stops_the_worker_with_one_line(
    tls_cluster: Cluster, secure: SecureRedis
) -> None:
    await tls_cluster.ensure_topics()
    line = one_line_exit(tls_cluster, tls_env(secure, redis_url=secure.url(user="nobody")))
    assert f"redis at 127.0.0.1:{secure.port} refused the login" in line


async def test_untrusted_server_certificate_stops_the_worker_with_one_line(
    tls_cluster: Cluster, secure: SecureRedis
) -> None:
    await tls_cluster.ensure_topics()
    line = one_line_exit(tls_cluster, tls_env(secure, redis_tls_ca_file=secure.pki.other_ca_crt))
    assert f"redis at 127.0.0.1:{secure.port} failed the TLS handshake" in line
    assert "certificate verify failed" in line


async def test_missing_client_certificate_stops_the_worker_with_one_line(
    tls_cluster: Cluster, secure: SecureRedis
) -> None:
    await tls_cluster.ensure_topics()
    env = tls_env(secure)
    del env["redis_tls_cert_file"], env["redis_tls_key_file"]
    line = one_line_exit(tls_cluster, env)
    assert "failed the TLS handshake" in line and "CERTIFICATE_REQUIRED" in line


async def test_a_command_the_acl_refuses_at_run_time_stops_the_worker_with_one_line(
    tls_cluster: Cluster, secure: SecureRedis
) -> None:
    """The relay reads the outbox with XRANGE: without it, NOPERM can never pass."""
    await tls_cluster.ensure_topics(decay_timer="false")
    w = tls_cluster.start_worker(
        decay_timer="false", **tls_env(secure, redis_url=secure.url(user="no-xrange"))
    )
    await tls_cluster.produce(history(customers=5, events=20, seed=3))
    try:
        rc = w.proc.wait(60)
    except subprocess.TimeoutExpired:
        w.kill()
        raise AssertionError(f"worker still running:\n{w.text()[-3000:]}") from None
    out = w.text()
    assert rc == 2, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    refusals = [line for line in out.splitlines() if line.startswith("rfm-stream:")]
    assert len(refusals) == 1 and "NOPERM" in refusals[0] and "xrange" in refusals[0], out[-3000:]


async def test_read_side_cli_says_wrong_password_in_one_line(
    tls_cluster: Cluster, secure: SecureRedis
) -> None:
    done = run_cli(
        tls_cluster, ["segments"], **tls_env(secure, redis_url=secure.url(password="wrong-pw"))
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        line for line in done.stderr.strip().splitlines() if line.startswith("rfm-stream: redis at")
    ]
    assert "refused the login" in done.stderr and "wrong-pw" not in done.stderr


async def test_a_tls_redis_that_is_down_at_start_is_still_waited_for(
    tls_cluster: Cluster, secure: SecureRedis
) -> None:
    """Only configuration errors are fatal: nothing listening is an outage, retried."""
    await tls_cluster.ensure_topics()
    down = f"rediss://rfm-worker:{PASSWORD}@127.0.0.1:{free_port()}/0"
    w = tls_cluster.start_worker(**tls_env(secure, redis_url=down))
    w.wait_for_log("connect to redis failed", timeout=30)
    await asyncio.sleep(2)
    assert w.proc.poll() is None, w.text()[-3000:]
    assert "rfm-stream:" not in w.text()
    w.kill()


def test_tls_files_with_a_plain_url_are_refused_at_start(tmp_path: Path, pki: Pki) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RFM_")}
    env |= {"RFM_REDIS_URL": "redis://localhost:6379/0", "RFM_REDIS_TLS_CA_FILE": pki.ca_crt}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "stream.cli", "segments"],
        env=env, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().startswith(
        "rfm-stream: bad setting RFM_REDIS_TLS_CA_FILE: a TLS file needs a TLS"
    )


async def test_worker_end_to_end_on_a_redis_cluster_under_the_documented_acl(
    kafka_bootstrap: str, redis_cluster_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """ACLs are per node: the user is set on every master. Plain TCP here (a TLS cluster
    bus needs ``tls-cluster yes`` and client-capable certificates: research §6)."""
    from redis.asyncio.cluster import RedisCluster

    admin = RedisCluster.from_url(redis_cluster_url, decode_responses=True)
    try:
        rules = f"on >{PASSWORD} {WORKER_ACL} {CLUSTER_EXTRA_ACL}".split()
        await admin.execute_command(
            "ACL", "SETUSER", "rfm-cluster", "reset", *rules, target_nodes=RedisCluster.PRIMARIES
        )
        await admin.execute_command("ACL", "LOG", "RESET", target_nodes=RedisCluster.PRIMARIES)
    finally:
        await admin.aclose()
    node = redis_cluster_url.removeprefix("redis://").split("/")[0]
    url = f"redis+cluster://rfm-cluster:{PASSWORD}@{node}/0"
    with isolated_cluster(kafka_bootstrap, url, tmp_path_factory, "acl-cluster") as cluster:
        settings = await cluster.ensure_topics(decay_timer="false")
        worker = cluster.start_worker(decay_timer="false")
        events = history(customers=40, events=300, seed=18)
        produced = await cluster.produce(events)
        _, want = expected(events, settings)
        got = await cluster.transitions(lambda ts: len(ts) >= len(want), wait_s=60)
        await cluster.wait_applied(produced, check=lambda: assert_alive(worker))
        assert story(got) == story(want)
        assert PASSWORD not in worker.text()
        segs = run_cli(cluster, ["segments", "--json"])
        assert segs.returncode == 0, segs.stderr

    admin = RedisCluster.from_url(redis_cluster_url, decode_responses=True)
    try:
        logs = await admin.execute_command("ACL", "LOG", target_nodes=RedisCluster.PRIMARIES)
    finally:
        await admin.aclose()
    refused = {
        f"{e['reason']}:{e['object']}"
        for entries in logs.values()
        for e in entries
        if e["username"] == "rfm-cluster"
    }
    assert refused <= {"command:config|get"}, refused
