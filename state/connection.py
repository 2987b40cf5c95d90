"""One Redis server or a Redis Cluster, chosen by the Redis URL alone.

- ``redis://host:port/0`` (or ``rediss://``): the server is asked once, on connect, with
  ``INFO cluster``; ``cluster_enabled:1`` means a Redis Cluster client
  (:class:`redis.asyncio.cluster.RedisCluster`), anything else a plain client. So the
  same URL form works for both, and pointing a worker at any node of a cluster is
  enough: the client discovers the others (``CLUSTER SLOTS``) and follows ``MOVED``.
- ``redis+cluster://host1:port1,host2:port2/0`` (or ``rediss+cluster://``): a cluster,
  without asking; every listed node is a seed, so the worker starts while one of them is
  down. For deployments where ``INFO`` is not allowed (ACL ``-@dangerous``), where
  detection falls back to a single server and says so in the log.

Detection needs a round trip, so it happens on the first use of a store (the worker's
start-up ``ping`` under backoff), never at construction: a Redis that is down when the
process starts is waited for, as before. Until then a store holds a single-server client
(:func:`make_client`), which is all it ever needs for a single Redis.

Everything this project sends is cluster-safe by construction: each Lua script call and
each multi-key command touches one partition's hash tag, i.e. one slot (:mod:`state.keys`);
cross-partition reads are non-transactional pipelines, which the cluster client splits by
node. SCAN is the exception: it runs per node (see :func:`scan_slot`).
"""

from __future__ import annotations

import logging
import re
import ssl
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias, TypeGuard, cast
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    AuthenticationError,
    ClusterDownError,
    NoPermissionError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from schemas.errors import StoreMisconfigured, StoreUnavailable
from state.keys import Keys
from state.refusals import StoreRefused, refusal_of

if TYPE_CHECKING:
    from schemas.settings import Settings

__all__ = [
    "CLUSTER_SCHEMES",
    "Connector",
    "RedisClient",
    "address_of",
    "connect",
    "is_cluster",
    "make_client",
    "misconfiguration",
    "scan_slot",
    "settle",
    "tls_options",
    "unavailable_as_error",
]

log = logging.getLogger(__name__)

RedisClient: TypeAlias = aioredis.Redis | RedisCluster
"""What every Redis-facing function here accepts: one server or a cluster.

Every client of this project is made with ``decode_responses=True``, so its replies are
text: where redis-py types a reply ``bytes | str`` (it can't know), the state code casts
it to ``str``."""

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
TLS_SCHEMES = ("rediss", "rediss+cluster")


def tls_options(settings: Settings) -> dict[str, str]:
    """redis-py's TLS options from ``RFM_REDIS_TLS_*`` (files a deployment mounts), for
    every client made from ``settings``: empty unless the URL is ``rediss://`` (the
    settings refuse the files with a plain URL). Options given in the URL's query win."""
    if urlsplit(settings.redis_url.get_secret_value()).scheme not in TLS_SCHEMES:
        return {}
    files = {
        "ssl_ca_certs": settings.redis_tls_ca_file,
        "ssl_certfile": settings.redis_tls_cert_file,
        "ssl_keyfile": settings.redis_tls_key_file,
    }
    return {k: v for k, v in files.items() if v is not None}


def address_of(url: str) -> str:
    """``host:port`` of the (first) node of ``url``, without its credentials: for errors."""
    netloc = urlsplit(url).netloc.rpartition("@")[2]
    first = netloc.split(",")[0].strip()
    return first if ":" in first.lstrip("[") else f"{first or 'localhost'}:6379"


# SSL errors that say the other end went away (a restart, a dropped link), not that the
# TLS set-up is wrong: those stay retriable like any lost connection
_SSL_TRANSIENT = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)
_TLS_TEXT = ("CERTIFICATE", "WRONG_VERSION_NUMBER", "UNKNOWN_CA", "[X509", "[PEM")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in seen and len(seen) < 8:
        seen.append(e)
        e = e.__cause__ or e.__context__
    return seen


def misconfiguration(exc: BaseException | None) -> str | None:
    """Why Redis refuses this process for good, or None if it may go away by waiting.

    A wrong password or unknown/disabled user (redis-py's AuthenticationError, which is a
    ConnectionError, hence retried as "unavailable" before), an ACL refusal (NOPERM:
    NoPermissionError, or its in-script form), and a TLS handshake that can't succeed
    (untrusted or mismatched server certificate, no client certificate, TLS against a
    plain port, an unreadable certificate file): retrying any of these can never work.
    """
    if exc is None:
        return None
    text = str(exc).strip()
    if isinstance(exc, AuthenticationError):
        code = "NOAUTH" if "required" in text.lower() else "WRONGPASS"
        return f"refused the login ({code} {text}); check the user and password in RFM_REDIS_URL"
    if isinstance(exc, NoPermissionError) or (
        isinstance(exc, ResponseError) and "can't access at least one of the keys" in text
    ):
        return f"refused a command by its ACL (NOPERM {text}); grant it (README: Security)"
    if not isinstance(exc, (RedisConnectionError, OSError)):
        return None
    chain = _chain(exc)
    if any(isinstance(e, _SSL_TRANSIENT) for e in chain):
        return None
    said = [str(e) for e in chain if isinstance(e, ssl.SSLError)]  # the handshake's own words
    said += [str(e) for e in chain if "SSL" in str(e) and any(t in str(e) for t in _TLS_TEXT)]
    if said:
        return f"failed the TLS handshake ({said[0]}); check RFM_REDIS_TLS_* and the URL"
    missing = [e for e in chain if isinstance(e, FileNotFoundError)]
    # a unix socket that isn't there ("connecting to /path") is a Redis not started yet
    if missing and not any(re.search(r"connecting to /", str(e)) for e in chain):
        return f"could not load a TLS file ({missing[0]}); check RFM_REDIS_TLS_*"
    return None


class Connector(Protocol):
    """What hands out the client once the server was asked whether it is a cluster
    (:meth:`state.store.RedisStore.connect`): a store's readers take this, not a client,
    because the first connect may swap the client for a cluster one."""

    keys: Keys
    """The namespace's keys *now*: a store is re-pointed at a namespace's physical name after
    it is made (a promoted namespace resolves to its build), and its readers must follow."""

    async def connect(self) -> RedisClient:
        """The client to use now (no I/O once the question was answered)."""
        ...


def is_cluster(client: RedisClient) -> TypeGuard[RedisCluster]:
    return isinstance(client, RedisCluster)


def _cluster_client(url: str, **options: object) -> RedisCluster:
    """A cluster client for ``url``; a ``+cluster`` scheme may list several seed nodes."""
    parts = urlsplit(url)
    scheme = CLUSTER_SCHEMES.get(parts.scheme, parts.scheme)
    creds, _, hosts = parts.netloc.rpartition("@")
    seeds = [h.strip() for h in hosts.split(",") if h.strip()]
    if not seeds:
        raise ValueError(f"no host in redis URL {scheme}://…")
    first = f"{creds}@{seeds[0]}" if creds else seeds[0]
    main = urlunsplit((scheme, first, parts.path, parts.query, parts.fragment))
    others = []
    for seed in seeds[1:]:
        host, _, port = seed.rpartition(":")
        others.append(ClusterNode(host or seed, int(port) if host else 6379))
    return RedisCluster.from_url(main, startup_nodes=others or None, **options)


async def _cluster_enabled(probe: aioredis.Redis) -> bool:
    """``INFO cluster`` says so; a server that refuses INFO is taken as a single one."""
    try:
        info = await probe.info("cluster")
    except ResponseError as exc:
        log.warning(
            "could not ask redis whether it is a cluster (%s): using it as a single server; "
            "for a Redis Cluster use a redis+cluster:// URL",
            exc,
        )
        return False
    return int(info.get("cluster_enabled", 0)) == 1


def make_client(url: str, **options: Any) -> RedisClient:
    """A client for ``url`` without any I/O: a cluster client for a ``+cluster`` URL, else
    a single-server one that :func:`settle` may swap for a cluster client."""
    if urlsplit(url).scheme in CLUSTER_SCHEMES:
        return _cluster_client(url, **options)
    return aioredis.Redis.from_url(url, **options)


async def settle(client: RedisClient, url: str, **options: object) -> RedisClient:
    """The right client for ``url``, connected: ``client`` itself if the server is a single
    one, else (``INFO cluster``) a cluster client with its slot map loaded.

    Connection failures raise redis-py's errors; callers turn them into their own, except
    a refusal no retry can change (:func:`misconfiguration`), raised here as
    :class:`StoreMisconfigured` naming the server.
    """
    try:
        return await _settle(client, url, **options)
    except Exception as exc:
        reason = misconfiguration(exc)
        if reason is None:
            raise
        raise StoreMisconfigured(f"redis at {address_of(url)} {reason}") from exc


async def _settle(client: RedisClient, url: str, **options: object) -> RedisClient:
    if isinstance(client, RedisCluster):
        await client.initialize()
        return client
    if not await _cluster_enabled(client):
        return client
    await client.aclose()
    cluster = _cluster_client(url, **options)
    await cluster.initialize()
    log.info(
        "redis at %s is a cluster of %d masters",
        urlsplit(url).hostname,
        len(cluster.get_primaries()),
    )
    return cluster


async def connect(url: str, **options: object) -> RedisClient:
    """A connected client for ``url``: one server, or a cluster with its slot map loaded."""
    client = make_client(url, **options)
    try:
        return await settle(client, url, **options)
    except BaseException:
        await client.aclose()
        raise


async def scan_slot(
    client: RedisClient, key_in_slot: str, cursor: int, match: str, count: int
) -> tuple[int, list[str]]:
    """One SCAN step over the keys like ``match`` on the node holding ``key_in_slot``.

    In a cluster a cursor belongs to one node, so a scan of one partition's keys must run
    on the master owning that partition's slot. If the slot migrates mid-scan (resharding)
    the cursor is meaningless on the new owner: that scan may miss keys, which is why only
    background, resumable work (sweeps) scans, never the hot path.
    """
    if isinstance(client, RedisCluster):
        # once the slot map is loaded every slot has a node (redis-py types it Optional),
        # and a cluster SCAN answers ({node name: cursor}, keys), not a server's reply
        node = cast(ClusterNode, client.get_node_from_key(key_in_slot))
        cursors, found = cast(
            "tuple[dict[str, int], list[str]]",
            await client.scan(cursor, match=match, count=count, target_nodes=node),
        )
        return int(cursors[node.name]), list(found)
    nxt, keys = await client.scan(cursor, match=match, count=count)
    return int(nxt), cast(list[str], list(keys))


_DOWN = (RedisConnectionError, RedisTimeoutError, OSError, ClusterDownError, TryAgainError)


def _unavailable(exc: BaseException | None) -> bool:
    """A Redis (or part of a cluster) that can't answer now, as opposed to a bug.

    Cluster clients add their own ways of saying so: CLUSTERDOWN / MASTERDOWN while a
    master fails over, TRYAGAIN during a slot migration, a slot no master covers, and
    "cannot be connected" when no seed node answers (caused by a connection error).
    """
    if isinstance(exc, _DOWN):
        return True
    if isinstance(exc, RedisClusterException):
        return "not covered" in str(exc) or isinstance(exc.__cause__, _DOWN)
    return False


class unavailable_as_error:
    """Turn redis-py connection failures into our retriable :class:`StoreUnavailable`, and
    Redis refusing writes for now (OOM, READONLY, MISCONF, a busy or killed script) into
    its subclass :class:`~state.refusals.StoreRefused`: both are waited out, not crashes."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> Literal[False]:  # never swallows: what it catches, it raises as another error
        if isinstance(exc, RedisConnectionError | OSError):
            reason = misconfiguration(exc)
            if reason is not None:  # a login or TLS refusal: no retry can change it
                raise StoreMisconfigured(f"redis {reason}") from exc
        if _unavailable(exc):
            raise StoreUnavailable(f"redis unavailable: {exc}") from exc
        reason = refusal_of(exc)
        if reason is not None:
            raise StoreRefused(reason, str(exc)) from exc
        return False
