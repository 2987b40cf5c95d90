"""``/segments/{scheme}/{segment}/members``: a segment's customers, paged over a snapshot.

``POST`` takes a snapshot: the namespace is walked (:mod:`stream.report.export`, what
``rfm-stream members`` does), the members sorted and stored in Redis
(:mod:`state.snapshots`), and the answer holds the cursor of the first page. A snapshot
of the same listing younger than :data:`FRESH_MS` is reused instead (200, not 201): a
walk costs a read of every customer. ``GET`` with a cursor returns a page and the next
cursor. The pages are cut from the stored snapshot, so paging is stable by construction
while customers move: no member is skipped or repeated, the order never changes.

Synchronous: the POST answers once the snapshot is stored, after a walk of every
customer (its rate: BENCHMARKS.md, "Segment members export"); a client of a big base sets
its timeout accordingly (a base of many millions would want an asynchronous take next: 202
and a poll). Snapshots expire after :data:`TTL_MS` (15 minutes); a cursor of an expired
one is answered 410 naming the cursor.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from schemas.settings import Settings
from segments.engine import Engine
from segments.rules import value_policy_of
from segments.scheme import Scheme
from state.snapshots import SnapshotMeta, Snapshots
from state.store import RedisStore
from state.walk import UnknownNamespace, namespace_partitions
from stream.api.lookup import BadParameter
from stream.apply.clock import WallClock
from stream.apply.encode import iso
from stream.report.export import ExportTarget, Spool, walk_members
from stream.report.members import BadQuery, Sort, check_sort, find_scheme

__all__ = ["DEFAULT_LIMIT", "FRESH_MS", "MAX_LIMIT", "TTL_MS", "Gone", "Members", "NotFound"]

TTL_MS = 900_000
"""How long a snapshot can be paged through (15 minutes). Snapshots live in the workers'
Redis, which runs ``noeviction``: with a new one at most every :data:`FRESH_MS` per
listing, at most TTL / FRESH = 3 copies of a listing exist at once (~328 B a member,
BENCHMARKS.md), a bound an hour's TTL made 12 (reviewer's finding)."""
FRESH_MS = 300_000
"""How long a snapshot is reused for a new listing of the same segment and sort (5 min)."""
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

_CURSOR = re.compile(r"([0-9a-f]{16}):(\d{1,12})")


class NotFound(LookupError):
    """No such scheme or segment (HTTP 404, naming it)."""


class Gone(LookupError):
    """The cursor's snapshot expired (HTTP 410, naming the cursor)."""


def cursor_of(snapshot_id: str, offset: int) -> str:
    """An opaque cursor: the snapshot and the offset of the page it starts."""
    return base64.urlsafe_b64encode(f"{snapshot_id}:{offset}".encode()).decode().rstrip("=")


def parse_cursor(text: str) -> tuple[str, int]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    found = _CURSOR.fullmatch(raw)
    if found is None:
        raise BadParameter("cursor", "is not a cursor this API gave out")
    return found[1], int(found[2])


def parse_limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    n = int(text) if re.fullmatch(r"\d{1,7}", text) else 0
    if not 1 <= n <= MAX_LIMIT:
        raise BadParameter("limit", f"{text!r}: a whole number from 1 to {MAX_LIMIT}")
    return n


class Members:
    """Snapshots of segment members over ``store``'s namespace, and their pages."""

    def __init__(
        self,
        settings: Settings,
        store: RedisStore,
        engine: Callable[[], Engine],
        now_ms: Callable[[], int],
    ) -> None:
        self.settings = settings
        self.store = store
        self._engine = engine
        self._now = now_ms
        self.snapshots = Snapshots(store, TTL_MS, WallClock().now_ms)
        self._walking = asyncio.Lock()
        """One walk at a time: a second request for the same listing then finds the
        first one's snapshot fresh, and the reads a worker's Redis serves stay bounded."""

    async def snapshot(self, scheme: str, segment: str, sort: str) -> tuple[dict[str, Any], bool]:
        """(the snapshot's description, whether it was made now) of the listing."""
        engine = self._engine()
        try:
            found = find_scheme(engine.schemes, scheme, segment)
        except BadQuery as exc:
            raise NotFound(str(exc)) from None
        try:
            checked = check_sort(sort, found, engine.model)
        except BadQuery as exc:
            raise BadParameter(exc.name, str(exc)) from None
        fresh = await self.snapshots.fresh(scheme, segment, checked)
        if fresh is not None:  # no wait behind another listing's walk for a fresh one
            return self._describe(fresh), False
        async with self._walking:
            fresh = await self.snapshots.fresh(scheme, segment, checked)
            if fresh is not None:
                return self._describe(fresh), False
            meta = await self._take(found, segment, checked, engine)
        return self._describe(meta), True

    async def _take(self, scheme: Scheme, segment: str, sort: Sort, engine: Engine) -> SnapshotMeta:
        """Walk the namespace for the members, sort them, store them as a snapshot."""
        try:
            n = await namespace_partitions(self.store)
        except UnknownNamespace:
            n = 0  # nothing written yet (no worker ran): nobody is a member, as /segments says
        now = self._now()
        with tempfile.TemporaryDirectory(prefix="rfm-members-") as tmp:
            target = ExportTarget(self.store.keys.namespace, n, scheme.name, segment)
            spool = Spool(Path(tmp) / "members.spool", target)
            spool.start(now, resume=False)
            policy = value_policy_of(self.settings)
            await walk_members(self.store, scheme, engine.model, policy, spool)
            order = await asyncio.to_thread(spool.order, sort)  # seconds at a million
            rows = spool.read(order)
            return await self.snapshots.save(scheme.name, segment, sort, rows, now, FRESH_MS)

    async def page(
        self, scheme: str, segment: str, cursor: str | None, limit: str | None
    ) -> dict[str, Any]:
        """The page ``cursor`` points at, at most ``limit`` members, and the next cursor."""
        if cursor is None:
            raise BadParameter(
                "cursor", f"is required: POST /segments/{scheme}/{segment}/members for one"
            )
        snapshot_id, offset = parse_cursor(cursor)
        n = parse_limit(limit)
        meta = await self.snapshots.meta(snapshot_id)
        if meta is None:
            raise Gone(f"cursor: snapshot {snapshot_id} expired or unknown; POST for a new one")
        if (meta.scheme, meta.segment) != (scheme, segment):
            raise BadParameter(
                "cursor", f"is of {meta.scheme}/{meta.segment}, not of {scheme}/{segment}"
            )
        rows = await self.snapshots.page(meta, offset, n)
        if rows is None:
            raise Gone(f"cursor: snapshot {snapshot_id} expired; POST for a new one")
        end = offset + len(rows)
        return {
            **self._describe(meta),
            "offset": offset,
            "members": rows,
            "next": cursor_of(meta.id, end) if end < meta.customers else None,
        }

    def _describe(self, meta: SnapshotMeta) -> dict[str, Any]:
        return {
            "snapshot": meta.id,
            "scheme": meta.scheme,
            "segment": meta.segment,
            "sort": meta.sort,
            "customers": meta.customers,
            "as_of": iso(meta.created_ms),
            "expires_at": iso(meta.expires_ms),
            "first": cursor_of(meta.id, 0),
        }
