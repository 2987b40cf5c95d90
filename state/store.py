"""The store: the few verbs the stream needs, each one Redis round trip.

Contract (per Kafka partition ``p``):

- ``claim(p)`` bumps the partition epoch; call it on assignment. Commits made with
  an older epoch are rejected from then on (fencing).
- ``load(p, ids)`` returns the states of ``ids`` together with the partition's
  commit version and last applied offset, read atomically.
- ``commit(p, ...)`` writes states, schedule, outbox and offset atomically, only if
  the epoch and version still match (see :mod:`state.scripts` for the steps).
- ``due(p, now)``, ``outbox_read(p)``/``outbox_ack(p)`` serve the timer and relay.
- ``get_state(p, id)`` reads one customer (the lookup, ops tools, tests).

Its collaborators read what the commits keep: ``store.tallies`` (:mod:`state.tallies`)
and ``store.scans`` (:mod:`state.scans`: sweeps, ops tools, never the per-event path).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import orjson
from redis.exceptions import ResponseError

from schemas.errors import CommitConflict, CommitRefused, Fenced, Moved
from segments.model import NEVER, CustomerState
from state import codec
from state.connection import RedisClient, is_cluster, make_client, settle, tls_options
from state.connection import unavailable_as_error as _unavailable_as_error
from state.keys import Keys
from state.namespaces import resolve
from state.scans import Scans
from state.schedule import DUE
from state.scripts import BUMP_EPOCH, COMMIT, LOAD, PUT_CUTS
from state.tallies import TallyReads

if TYPE_CHECKING:
    from schemas.settings import Settings

__all__ = ["LISTPACK_VALUE", "Claim", "Loaded", "RedisStore"]

LISTPACK_VALUE = 1024
"""The ``hash-max-listpack-value`` customer hashes need to stay compact listpacks.

A customer hash keeps its state in one field (``state.codec``), usually longer than
Redis's default of 64 bytes; one such field turns the whole hash into a hashtable, far
more memory (with v1's fields, measured: 1,168 vs 368 bytes for a one-order customer).
The codec splits longer states into fields under :data:`state.codec.CHUNK`."""


@dataclass(frozen=True, slots=True)
class Claim:
    """What a worker holds for a partition it owns."""

    partition: int
    epoch: int
    offset: int  # last applied offset, -1 if none


@dataclass(slots=True)
class Loaded:
    version: int
    offset: int
    epoch: int | None
    states: dict[str, CustomerState]


_OPTIONS: dict[str, object] = {
    "decode_responses": True,
    "socket_timeout": 10,
    "socket_connect_timeout": 5,
}


def _int(v: str | None, default: int) -> int:
    return default if v is None else int(v)


class RedisStore:
    """Redis-backed state for one namespace, on one server or a Redis Cluster.

    ``from_url`` makes a client without I/O; the first verb asks the server whether it is
    a cluster (:mod:`state.connection`) and, if so, swaps in a cluster client. Every verb
    below is one slot's worth of work, or a non-transactional pipeline the cluster client
    splits by master, so callers never know which kind of Redis they talk to.
    """

    def __init__(
        self,
        client: RedisClient,
        keys: Keys,
        url: str | None = None,
        options: dict[str, object] | None = None,
    ) -> None:
        # for ops tools and tests: a cluster's client only once a verb (or connect()) ran
        self.client = client
        self.keys = keys
        self._url = url  # given: not yet asked whether it is a cluster
        self._settled = url is None
        self._options = {**_OPTIONS, **(options or {})}  # also for a cluster client
        self._settling = asyncio.Lock()
        self._watermark: tuple[str, str] | None = None
        self.watermarks: dict[int, int] = {}
        """Per partition, the highest watermark this store committed (see
        :meth:`track_watermark`)."""
        # both ask this store for the client and the keys to use, at each call
        self.tallies = TallyReads(self)
        self.scans = Scans(self)
        self._register(client)

    def _register(self, client: RedisClient) -> None:
        # registered scripts run EVALSHA (routed by the first key in a cluster) and load
        # the script on NOSCRIPT: a failed-over or new master has an empty script cache
        self._load = client.register_script(LOAD)
        self._commit = client.register_script(COMMIT)
        self._bump = client.register_script(BUMP_EPOCH)
        self._put_cuts = client.register_script(PUT_CUTS)
        self._due = client.register_script(DUE)

    @classmethod
    def from_url(cls, url: str, prefix: str, namespace: str, **options: object) -> RedisStore:
        """A store for ``url``; ``options`` (TLS files) go to every client it makes."""
        return cls(make_client(url, **_OPTIONS, **options), Keys(prefix, namespace), url, options)

    @classmethod
    def from_settings(cls, settings: Settings, namespace: str | None = None) -> RedisStore:
        """The store ``settings`` point at (URL and TLS files), for ``namespace`` (default:
        ``RFM_NAMESPACE``): what every command uses, so none forgets the TLS files."""
        url = settings.redis_url.get_secret_value()
        ns = namespace or settings.namespace
        return cls.from_url(url, settings.key_prefix, ns, **tls_options(settings))

    @property
    def cluster(self) -> bool:
        """Whether the store talks to a Redis Cluster (known once connected)."""
        return is_cluster(self.client)

    async def connect(self) -> RedisClient:
        """The client, after asking the server once whether it is a cluster."""
        if self._settled:
            return self.client
        async with self._settling, _unavailable_as_error():
            if not self._settled:
                assert self._url is not None
                client = await settle(self.client, self._url, **self._options)
                if client is not self.client:
                    self.client = client
                    self._register(client)
                self._settled = True
        return self.client

    async def close(self) -> None:
        await self.client.aclose()

    async def ping(self) -> None:
        async with _unavailable_as_error():
            await (await self.connect()).ping()

    async def listpack_value(self) -> int | None:
        """The server's ``hash-max-listpack-value`` (None if CONFIG is not allowed)."""
        c = self.client if self._settled else await self.connect()
        try:
            async with _unavailable_as_error():
                if is_cluster(c):  # every master holds customers: the smallest counts
                    nodes = c.get_primaries()
                    got = [
                        await c.config_get("hash-max-listpack-value", target_nodes=n) for n in nodes
                    ]
                else:
                    got = [await c.config_get("hash-max-listpack-value")]
        except ResponseError:
            return None
        name = "hash-max-listpack-value"
        values = [int(cast(str, g[name])) for g in got if name in g]  # a number, decoded
        return min(values) if values else None

    async def serving(self, name: str) -> str:
        """The physical namespace serving the live ``name`` (see :mod:`state.namespaces`)."""
        async with _unavailable_as_error():
            return await resolve(await self.connect(), self.keys.prefix, name)

    # ------------------------------------------------------------------ ownership
    async def claim(self, partition: int) -> Claim:
        if not self._settled:
            await self.connect()  # a cluster client (and its scripts) may replace ours
        async with _unavailable_as_error():
            epoch, _ver, off = await self._bump(keys=[self.keys.meta(partition)])
        return Claim(partition, int(epoch), _int(off, -1))

    async def meta(self, partition: int) -> tuple[int | None, int, str | None]:
        """(epoch, last applied offset, moved-to namespace) of a partition."""
        c = self.client if self._settled else await self.connect()
        async with _unavailable_as_error():
            raw = await c.hmget(self.keys.meta(partition), "epoch", "off", "moved")
        epoch, off, moved = cast(list[str | None], raw)  # decoded (state.connection.RedisClient)
        return (None if epoch is None else int(epoch)), _int(off, -1), moved

    async def committed_offsets(self, partitions: Iterable[int]) -> dict[int, int]:
        """Last applied offset per partition (-1 when nothing was applied yet)."""
        parts = list(partitions)
        c = self.client if self._settled else await self.connect()
        async with _unavailable_as_error(), c.pipeline(transaction=False) as pipe:
            for p in parts:
                pipe.hget(self.keys.meta(p), "off")
            raw = await pipe.execute()
        return {p: _int(v, -1) for p, v in zip(parts, raw, strict=True)}

    def track_watermark(self, field: str, position: str = "off") -> None:
        """From now on, every commit that advances ``position`` also raises the meta field
        ``field`` to the latest cursor among the states it writes, in the same atomic
        write (never lowering it): the event time the reader has applied up to (its
        watermark, which a backfill's final decays fire at). Written apart from the
        offsets, a kill in between would leave a resumed run with a stale watermark.

        A cursor is the event time of the customer's last applied event (or of a decay
        fired before it, :class:`~segments.model.CustomerState`), so the field is the
        latest event time applied; a duplicate or refused event does not move it.
        """
        self._watermark = (position, field)

    # ------------------------------------------------------------------ batch
    async def load(
        self, partition: int, customer_ids: Sequence[str], position: str = "off"
    ) -> Loaded:
        keys = [self.keys.meta(partition)] + [
            self.keys.customer(partition, c) for c in customer_ids
        ]
        if not self._settled:
            await self.connect()  # a cluster client (and its scripts) may replace ours
        async with _unavailable_as_error():
            raw = await self._load(keys=keys, args=[position])
        epoch, ver, off, moved = raw[0]
        if moved:
            raise Moved(moved)
        states = {}
        for cid, flat in zip(customer_ids, raw[1:], strict=True):
            if flat:
                states[cid] = codec.decode_state(cid, flat)
        return Loaded(_int(ver, 0), _int(off, -1), None if epoch is None else int(epoch), states)

    async def commit(
        self,
        partition: int,
        epoch: int,
        version: int,
        states: Sequence[CustomerState],
        due: Mapping[str, int],
        outbox: Sequence[tuple[str, bytes]],
        offset: int | str | None = None,
        position: str = "off",
        summaries: Mapping[str, Mapping[int, int]] | None = None,
        counters: Mapping[str, Mapping[str, int]] | None = None,
        expire_at: Mapping[str, int] | None = None,
    ) -> int:
        """Atomically write a batch; returns the new version.

        ``summaries``: population -> bucket -> count delta, applied to the partition's
        quantile summaries in the same write (so they match the states exactly).
        ``counters``: partition-relative hash name (``Keys.counts``, ``Keys.flows``) ->
        field -> delta, likewise; ``expire_at`` gives some of them an expiry (epoch ms).

        Raises :class:`Fenced` if the partition was claimed by someone else since
        ``epoch``, :class:`CommitConflict` if another commit happened since ``version``,
        :class:`CommitRefused` (nothing written) for a state over the size limit or a
        batch the script's checks refuse.
        """
        keys = [self.keys.meta(partition), self.keys.due(partition), self.keys.outbox(partition)]
        # one JSON argument for all states and due times: a few big args pack far faster
        # in redis-py than tens of thousands of small ones, and cjson decodes it in C
        customers = []
        for s in states:
            keys.append(self.keys.customer(partition, s.customer_id))
            fields = codec.encode_state(s)  # text already
            if len(fields) > 2 * codec.MAX_FIELDS:
                raise CommitRefused(
                    f"partition {partition}: the state of customer {s.customer_id!r} takes "
                    f"{len(fields) // 2} fields, the limit is {codec.MAX_FIELDS}: nothing "
                    "was written"
                )
            customers.append(fields)
        schedule = [[cid, "" if t == NEVER else str(t)] for cid, t in due.items()]
        doc: dict[str, object] = {"c": customers, "d": schedule}
        q: list[list[str]] = []
        expire: list[list[int]] = []
        for population, deltas in (summaries or {}).items():
            keys.append(self.keys.summary(partition, population))
            q.append([str(x) for pair in deltas.items() for x in pair])
        for name, changes in (counters or {}).items():
            keys.append(f"{self.keys.tag(partition)}:{name}")
            q.append([str(x) for pair in changes.items() for x in pair])
            if name in (expire_at or {}):
                expire.append([len(q), (expire_at or {})[name]])
        if q:
            doc["q"] = q
        if expire:
            doc["x"] = expire
        mark = None
        if self._watermark is not None and states and offset is not None:
            tracked, field = self._watermark
            if position == tracked:
                mark = max(s.cursor_ms for s in states)
                doc["w"] = [field, str(mark)]
        blob = orjson.dumps(doc)
        args: list[str | bytes | int] = [epoch, version, position]
        args.append("" if offset is None else offset)
        args.append(blob)
        for customer_id, payload in outbox:
            args.append(customer_id)
            args.append(payload)
        if not self._settled:
            await self.connect()  # a cluster client (and its scripts) may replace ours
        try:
            async with _unavailable_as_error():
                version = int(await self._commit(keys=keys, args=args))
        except ResponseError as exc:
            text = str(exc)
            if text.startswith("PROMOTED"):
                raise Moved(text.split(" ", 1)[1]) from None
            if text.startswith("FENCED"):
                raise Fenced(f"partition {partition}: {text}") from None
            if text.startswith("CONFLICT"):
                raise CommitConflict(f"partition {partition}: {text}") from None
            if text.startswith("REFUSED"):
                raise CommitRefused(
                    f"partition {partition}: commit refused, nothing was written: "
                    + text.removeprefix("REFUSED ")
                ) from None
            raise
        if mark is not None and mark > self.watermarks.get(partition, -1):
            self.watermarks[partition] = mark
        return version

    async def get_state(self, partition: int, customer_id: str) -> CustomerState | None:
        """One customer's state (None: never seen); not for the per-event path (``load``)."""
        c = self.client if self._settled else await self.connect()
        async with _unavailable_as_error():
            flat = cast(dict[str, str], await c.hgetall(self.keys.customer(partition, customer_id)))
        return codec.decode_state(customer_id, flat) if flat else None

    # ------------------------------------------------------------------ quantiles
    async def cuts(self) -> dict[str, object] | None:
        """The current cut-point version's JSON document (None: none yet)."""
        c = self.client if self._settled else await self.connect()
        async with _unavailable_as_error():
            raw = await c.get(self.keys.cuts())
        return orjson.loads(raw) if raw else None

    async def put_cuts(self, expected_version: int, doc: Mapping[str, object]) -> bool:
        """Install a new version if the current one is still ``expected_version``."""
        if not self._settled:
            await self.connect()  # a cluster client (and its scripts) may replace ours
        async with _unavailable_as_error():
            won = await self._put_cuts(
                keys=[self.keys.cuts()], args=[expected_version, orjson.dumps(doc)]
            )
        return bool(won)

    async def meta_field(self, partition: int, name: str) -> str | None:
        c = self.client if self._settled else await self.connect()
        async with _unavailable_as_error():
            return cast(str | None, await c.hget(self.keys.meta(partition), name))

    async def set_meta_field(self, partition: int, name: str, value: str) -> None:
        c = self.client if self._settled else await self.connect()
        async with _unavailable_as_error():
            await c.hset(self.keys.meta(partition), name, value)

    # ------------------------------------------------------------------ schedule
    async def due(self, partition: int, now_ms: int, limit: int) -> list[str]:
        """Customers whose due time is at or before ``now_ms``: O(log n + due), no scan
        (the buckets of :mod:`state.schedule`, after any legacy entries)."""
        if not self._settled:
            await self.connect()  # a cluster client (and its scripts) may replace ours
        keys = [self.keys.due(partition), self.keys.schedule_index(partition)]
        async with _unavailable_as_error():
            return list(await self._due(keys=keys, args=[now_ms, limit, self.keys.tag(partition)]))

    # ------------------------------------------------------------------ outbox
    async def outbox_read(self, partition: int, count: int) -> list[tuple[str, str, bytes]]:
        """Oldest unpublished transitions: (entry id, customer id, JSON payload)."""
        c = self.client if self._settled else await self.connect()
        async with _unavailable_as_error():
            raw = await c.xrange(self.keys.outbox(partition), count=count)
        rows = cast(list[tuple[str, dict[str, str]]], raw)  # decoded (state.connection)
        return [(entry_id, f["k"], f["d"].encode()) for entry_id, f in rows]

    async def outbox_size(self, partition: int) -> int:
        c = self.client if self._settled else await self.connect()
        async with _unavailable_as_error():
            return int(await c.xlen(self.keys.outbox(partition)))

    async def outbox_ack(self, partition: int, entry_ids: Sequence[str]) -> None:
        if entry_ids:
            c = self.client if self._settled else await self.connect()
            async with _unavailable_as_error():
                await c.xdel(self.keys.outbox(partition), *entry_ids)
