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

from dataclasses import dataclass

from stream.demo.embedded import Service, free_port, start_redis
from tests.support.tls import Pki, make_pki

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
            f"rediss://{ADMIN[0]}:{ADMIN[1]}@127.0.0.1:{self.port}/0?ssl_ca_certs={p.ca_crt}"
            f"&ssl_certfile={p.client_crt}&ssl_keyfile={p.client_key}"
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
    extra += ["--tls-cert-file", pki.server_crt, "--tls-key-file", pki.server_key]
    extra += ["--tls-ca-cert-file", pki.ca_crt, "--tls-auth-clients", "yes"]
    # one argv element per word: redis-server quotes each, "a b" would be one username
    extra += ["--user", "default", "off"]
    for name, rules in lines.items():
        extra += ["--user", name, "on", *rules.split()]
    server = start_redis(port=port, extra_args=extra)
    return SecureRedis(server, pki, user, password)
