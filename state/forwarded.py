"""A backfill's misrouted records, staged under their home partition, and the copies of
them a live worker already forwarded (see :mod:`stream.backfill.forward` for the rule).

Per partition ``p`` of the backfill's namespace, in ``p``'s slot (one cluster slot, like
every other key of the partition, :mod:`state.keys`)::

    {prefix}:{ns:p}:fw     hash  copy id -> sequence number (0, 1, ...; never reused)
    {prefix}:{ns:p}:fwq    hash  sequence number -> the record (JSON: copy id, key and
                                 value base64)
    {prefix}:{ns:p}:fwc    set   copy ids of forwarded copies read from p itself
    {prefix}:{ns:p}:meta   field ``fwd``: the last sequence number applied (the reader's
                           position, committed with the state by the commit script)

Staging is idempotent per copy id (a record staged again after a kill keeps its first
number), so the sequence is an append-only log that a resumed backfill continues.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from typing import cast

import orjson

from state.connection import unavailable_as_error
from state.store import RedisStore

__all__ = ["FORWARDED", "ForwardedStore", "Staged"]

FORWARDED = "fwd"
"""Meta field: the position (last applied sequence number) of the staged records' reader."""

Staged = tuple[int, str, bytes | None, bytes | None]
"""(sequence number, copy id, key, value)"""

_STAGE = """
-- KEYS[1]=fw KEYS[2]=fwq; ARGV: (copy id, record JSON)...  Returns how many were new.
local new = 0
for i = 1, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then
    local seq = redis.call('HLEN', KEYS[1])
    redis.call('HSET', KEYS[1], ARGV[i], seq)
    redis.call('HSET', KEYS[2], seq, ARGV[i + 1])
    new = new + 1
  end
end
return new
"""

_CHUNK = 500
"""Records per staging call (bounded script arguments)."""


def _b64(b: bytes | None) -> str | None:
    return None if b is None else base64.b64encode(b).decode()


def _unb64(s: str | None) -> bytes | None:
    return None if s is None else base64.b64decode(s)


class ForwardedStore:
    """The staging verbs over a backfill namespace's store (its client and key layout)."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store

    def _keys(self, p: int) -> tuple[str, str, str]:
        tag = self.store.keys.tag(p)
        return f"{tag}:fw", f"{tag}:fwq", f"{tag}:fwc"

    async def stage(self, p: int, records: Sequence[tuple[str, bytes | None, bytes | None]]) -> int:
        """Stage (copy id, key, value) records for home partition ``p``; returns how many
        were not staged before."""
        client = await self.store.connect()
        fw, fwq, _ = self._keys(p)
        script = client.register_script(_STAGE)
        new = 0
        for i in range(0, len(records), _CHUNK):
            args: list[str] = []
            for cid, key, value in records[i : i + _CHUNK]:
                args += [cid, orjson.dumps({"c": cid, "k": _b64(key), "v": _b64(value)}).decode()]
            async with unavailable_as_error():
                new += int(await script(keys=[fw, fwq], args=args))
        return new

    async def mark_copies(self, p: int, copy_ids: Iterable[str]) -> None:
        """Remember that forwarded copies with these ids were read from ``p``."""
        ids = list(copy_ids)
        if ids:
            client = await self.store.connect()
            async with unavailable_as_error():
                await client.sadd(self._keys(p)[2], *ids)

    async def copies(self, p: int) -> set[str]:
        client = await self.store.connect()
        async with unavailable_as_error():
            return set(cast(set[str], await client.smembers(self._keys(p)[2])))  # decoded

    async def applied(self, p: int) -> int:
        """The last staged sequence number applied to ``p`` (-1: none)."""
        got = await self.store.meta_field(p, FORWARDED)
        return -1 if got is None else int(got)

    async def read(self, p: int, after: int, count: int) -> list[Staged]:
        """Up to ``count`` staged records of ``p`` numbered after ``after``, in order."""
        client = await self.store.connect()
        fw, fwq, _ = self._keys(p)
        async with unavailable_as_error():
            total = int(await client.hlen(fw))
            seqs = list(range(after + 1, min(total, after + 1 + count)))
            raw = await client.hmget(fwq, [str(s) for s in seqs]) if seqs else []
        out: list[Staged] = []
        for seq, doc in zip(seqs, raw, strict=True):
            if doc is None:
                continue
            d = orjson.loads(doc)
            out.append((seq, d["c"], _unb64(d["k"]), _unb64(d["v"])))
        return out
