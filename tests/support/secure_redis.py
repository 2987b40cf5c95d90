"""A redis-server that speaks TLS only, with the worker's ACL user and the default user off.

What a retail team's Redis looks like (issue #17): ``--port 0 --tls-port P``, a certificate
signed by the team's own CA, ``tls-auth-clients yes`` (a client certificate is required),
and one ACL user per service. The certificates are made here with the ``openssl`` CLI (no
Python crypto package needed), the server with :func:`stream.demo.embedded.start_redis`.

:data:`WORKER_ACL` is *the* documented ACL (README, Security): the tests run the worker and
the read-side commands under exactly this line, so a command added to the code without
being added here fails a test instead of a deployment.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from stream.demo.embedded import Service, free_port, start_redis

__all__ = [
    "ADMIN",
    "CLUSTER_EXTRA_ACL",
    "WORKER_ACL",
    "Pki",
    "SecureRedis",
    "make_pki",
    "start_secure_redis",
]

WORKER_ACL = (
    "~rfm:* ~{rfm:* resetchannels -@all "
    "+ping +get +set +del +unlink +exists +type +pexpireat +scan "
    "+hget +hset +hsetnx +hgetall +hmget +hlen +hdel +hexists +hincrby "
    "+sadd +srem +smembers "
    "+zadd +zcard +zcount +zrange +zrangebyscore +zrevrangebyscore +zrem +zremrangebyscore "
    "+zscore +xadd +xrange +xdel +xlen +evalsha +script|load +script|exists"
)
"""Key patterns and commands of the ``rfm-stream`` user (worker, backfill, the CLI): after
``user NAME on >PASSWORD``. ``~{rfm:*`` is the retired-namespaces set
(``{rfm:active:<name>}:retired``); replace ``rfm`` with ``RFM_KEY_PREFIX`` if it is set.
Not granted on purpose: INFO (cluster detection: use a ``rediss+cluster://`` URL for a
cluster) and CONFIG GET (the eviction and listpack checks are skipped with a warning each);
add ``+select`` for a database other than 0."""

CLUSTER_EXTRA_ACL = "+command +cluster|slots +cluster|shards +asking +readonly"
"""What a Redis Cluster client needs on top of :data:`WORKER_ACL` (redis-py's cluster
client runs COMMAND and CLUSTER SLOTS on start; ASKING follows a slot migration)."""

ADMIN = ("admin", "admin-pw")
"""The tests' own user (set-up, ACL LOG): everything, never given to a worker."""


@dataclass(frozen=True)
class Pki:
    """Files of a test CA, the server's and a client's certificates, and another CA."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    """A CA that signed nothing here: trusting only it must fail the handshake."""


def _openssl(*args: str, cwd: Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise RuntimeError("openssl is not installed (apt-get install openssl)")
    done = subprocess.run([exe, *args], cwd=cwd, capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.decode(errors='replace')}")


def make_pki(where: Path) -> Pki:
    """A CA, a server certificate for ``127.0.0.1`` and ``localhost`` (both SANs: Python
    matches an IP only against an IP SAN), a client certificate, and an unrelated CA."""
    where.mkdir(parents=True, exist_ok=True)
    days = ("-days", "30")

    def ca(name: str) -> None:
        key, crt = f"{name}.key", f"{name}.crt"
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", *days, "-subj",
                 f"/CN={name}", "-keyout", key, "-out", crt, cwd=where)  # fmt: skip

    def signed(name: str, cn: str, ext: str) -> None:
        (where / f"{name}.ext").write_text(ext)
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=where)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", *days, "-extfile", f"{name}.ext", "-out", f"{name}.crt",
                 cwd=where)  # fmt: skip

    ca("ca")
    ca("other-ca")
    signed("server", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
           "extendedKeyUsage=serverAuth,clientAuth\n")  # fmt: skip
    signed("client", "rfm-worker", "extendedKeyUsage=clientAuth\n")
    return Pki(
        ca=where / "ca.crt",
        server_cert=where / "server.crt",
        server_key=where / "server.key",
        client_cert=where / "client.crt",
        client_key=where / "client.key",
        other_ca=where / "other-ca.crt",
    )


@dataclass
class SecureRedis:
    server: Service
    pki: Pki
    user: str
    password: str

    @property
    def port(self) -> int:
        return self.server.port

    def url(self, user: str | None = None, password: str | None = None) -> str:
        """``rediss://`` for the worker user (or another), TLS files not in it."""
        return f"rediss://{user or self.user}:{password or self.password}@127.0.0.1:{self.port}/0"

    def admin_url(self) -> str:
        """The tests' own view: admin user, CA and client certificate in the URL's query."""
        p = self.pki
        return (
            f"rediss://{ADMIN[0]}:{ADMIN[1]}@127.0.0.1:{self.port}/0?ssl_ca_certs={p.ca}"
            f"&ssl_certfile={p.client_cert}&ssl_keyfile={p.client_key}"
        )

    def stop(self) -> None:
        self.server.stop()


def start_secure_redis(
    pki: Pki,
    user: str = "rfm-worker",
    password: str = "worker-pw",
    acl: str = WORKER_ACL,
    users: dict[str, str] | None = None,
) -> SecureRedis:
    """redis-server with only a TLS port (client certificates required), ``user`` with
    exactly ``acl``, :data:`ADMIN`, and the default user off; ``users`` adds more
    (name -> rules after ``on``)."""
    port = free_port()
    lines = {user: f">{password} {acl}", ADMIN[0]: f">{ADMIN[1]} ~* &* +@all", **(users or {})}
    extra = ["--port", "0", "--tls-port", str(port)]  # the plain port given to start_redis: off
    extra += ["--tls-cert-file", str(pki.server_cert), "--tls-key-file", str(pki.server_key)]
    extra += ["--tls-ca-cert-file", str(pki.ca), "--tls-auth-clients", "yes"]
    # one argv element per word: redis-server quotes each, "a b" would be one username
    extra += ["--user", "default", "off"]
    for name, rules in lines.items():
        extra += ["--user", name, "on", *rules.split()]
    server = start_redis(port=port, extra_args=extra)
    return SecureRedis(server, pki, user, password)
