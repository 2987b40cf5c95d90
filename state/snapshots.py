"""Sorted snapshots of a segment's members in Redis, paged through by the HTTP API.

A snapshot is one hash, so on a Redis Cluster it sits in one slot (its own hash tag) and
a page is one HMGET on one master; it expires (``ttl_ms``), and no value in it exceeds
:data:`CHUNK` rows (a few hundred KB)::

    {prefix}:{ns:members:<id>}:members   hash   meta -> JSON (scheme, segment, sort,
                                                customers, created/expires ms);
                                                0, 1, ... -> JSON array of <= CHUNK rows
    {prefix}:{ns:members}:fresh:<scheme>|<segment>|<sort>
                                         string the id of the newest snapshot of that
                                                listing, while it is fresh (expires)

The rows are written before the meta, so a snapshot whose build stopped halfway has no
meta and is never served; each chunk write sets the same expiry, so a half-built one goes too.
Pages never change: customers moving after the snapshot was taken don't move in it.
Both key shapes fall under the namespace's pattern, so dropping a namespace drops them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from state.connection import unavailable_as_error
from state.store import RedisStore

__all__ = ["CHUNK", "SnapshotMeta", "Snapshots"]

CHUNK = 500
"""Rows per hash field: a page of up to 1,000 reads two or three fields."""

_PIPELINE_CHUNKS = 20
"""Chunk fields written per round trip while a snapshot is saved."""


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    id: str
    scheme: str
    segment: str
    sort: str
    customers: int
    created_ms: int
    expires_ms: int


class Snapshots:
    """Save and page the snapshots of one store's namespace.

    ``wall_ms``: the wall clock the expiry is set by (PEXPIREAT, which the worker's
    documented ACL allows, unlike PEXPIRE); the as-of time of the rows is the caller's.
    """

    def __init__(self, store: RedisStore, ttl_ms: int, wall_ms: Callable[[], int]) -> None:
        self.store = store
        self.ttl_ms = ttl_ms
        self._wall = wall_ms

    def key(self, snapshot_id: str) -> str:
        k = self.store.keys
        return f"{k.prefix}:{{{k.namespace}:members:{snapshot_id}}}:members"

    def fresh_key(self, scheme: str, segment: str, sort: str) -> str:
        k = self.store.keys
        return f"{k.prefix}:{{{k.namespace}:members}}:fresh:{scheme}|{segment}|{sort}"

    async def save(
        self,
        scheme: str,
        segment: str,
        sort: str,
        rows: Iterable[dict[str, Any]],
        now_ms: int,
        fresh_ms: int,
    ) -> SnapshotMeta:
        """Store ``rows`` (in their order, as of ``now_ms``) as a new snapshot, fresh for
        ``fresh_ms``."""
        snapshot_id = secrets.token_hex(8)
        key = self.key(snapshot_id)
        expires = self._wall() + self.ttl_ms
        client = await self.store.connect()
        count, chunk = 0, []
        fields: dict[str, str] = {}

        async def flush() -> None:
            async with unavailable_as_error(), client.pipeline(transaction=False) as pipe:
                pipe.hset(key, items=[x for kv in fields.items() for x in kv])
                pipe.pexpireat(key, expires)
                await pipe.execute()
            fields.clear()

        for row in rows:
            chunk.append(row)
            if len(chunk) == CHUNK:
                fields[str(count // CHUNK)] = orjson.dumps(chunk).decode()
                count += len(chunk)
                chunk = []
                if len(fields) == _PIPELINE_CHUNKS:
                    await flush()
        if chunk:
            fields[str(count // CHUNK)] = orjson.dumps(chunk).decode()
            count += len(chunk)
        meta = SnapshotMeta(snapshot_id, scheme, segment, sort, count, now_ms, now_ms + self.ttl_ms)
        fields["meta"] = orjson.dumps(asdict(meta)).decode()
        await flush()  # the meta last: only a whole snapshot is ever served
        async with unavailable_as_error():
            await client.set(self.fresh_key(scheme, segment, sort), snapshot_id, px=fresh_ms)
        return meta

    async def fresh(self, scheme: str, segment: str, sort: str) -> SnapshotMeta | None:
        """The newest snapshot of the listing while it is fresh (None: build one)."""
        client = await self.store.connect()
        async with unavailable_as_error():
            found = await client.get(self.fresh_key(scheme, segment, sort))
        return None if found is None else await self.meta(str(found))

    async def meta(self, snapshot_id: str) -> SnapshotMeta | None:
        """The snapshot's meta (None: unknown, expired, or never finished)."""
        client = await self.store.connect()
        async with unavailable_as_error():
            raw = await client.hget(self.key(snapshot_id), "meta")
        return None if raw is None else SnapshotMeta(**orjson.loads(raw))

    async def page(
        self, meta: SnapshotMeta, offset: int, limit: int
    ) -> list[dict[str, Any]] | None:
        """Rows ``offset`` to ``offset + limit`` (fewer at the end); None: expired since."""
        end = min(offset + limit, meta.customers)
        if offset >= end:
            return []
        first, last = offset // CHUNK, (end - 1) // CHUNK
        client = await self.store.connect()
        async with unavailable_as_error():
            raw = await client.hmget(self.key(meta.id), [str(i) for i in range(first, last + 1)])
        if any(r is None for r in raw):
            return None
        rows: list[dict[str, Any]] = []
        for r in raw:
            rows += orjson.loads(str(r))
        start = offset - first * CHUNK
        return rows[start : start + (end - offset)]
