"""A namespace-wide lease on computing a rules change's first cut points.

Several workers starting on new rules at once would each walk every customer to compute
the same version; one takes this lease (SET NX with an expiry), the others wait for the
version to appear. The lease only saves the work: correctness is the compare-and-set
that installs a version (:meth:`state.store.RedisStore.put_cuts`), so a holder that
stalled past its expiry and a second one computing too still install exactly one
version. A holder renews the lease as it walks; a crashed one stops renewing and the
lease expires, so nobody waits for it for ever.

Plain commands (GET, SET NX / XX with PX, DEL), those the worker's documented ACL
grants, not a script: a renewal or release checks the token, then acts, and the lease
may change hands in between; at worst that lets a second process walk too, which the
compare-and-set makes harmless.
"""

from __future__ import annotations

import secrets

from state.connection import unavailable_as_error
from state.store import RedisStore

__all__ = ["LEASE_MS", "PassLease"]

LEASE_MS = 30_000
"""How long a lease lasts without renewal: how long a crashed holder delays the others."""


class PassLease:
    """The lease of one store's namespace, held (or not) by this process."""

    def __init__(self, store: RedisStore, lease_ms: int = LEASE_MS) -> None:
        self.store = store
        self.lease_ms = lease_ms
        self.token = secrets.token_hex(8)
        self.key = f"{store.keys.cuts()}:pass"  # the cuts key's hash tag: one slot

    async def take(self) -> bool:
        """Take the lease if nobody holds it; True if we hold it now."""
        client = await self.store.connect()
        async with unavailable_as_error():
            return bool(await client.set(self.key, self.token, nx=True, px=self.lease_ms))

    async def held_by_anyone(self) -> bool:
        client = await self.store.connect()
        async with unavailable_as_error():
            return bool(await client.exists(self.key))

    async def renew(self) -> bool:
        """Extend our lease by its length from now (Redis's clock); False if it expired
        and is no longer ours."""
        client = await self.store.connect()
        async with unavailable_as_error():
            if await client.get(self.key) != self.token:
                return False
            return bool(await client.set(self.key, self.token, xx=True, px=self.lease_ms))

    async def release(self) -> None:
        """Give the lease up if it is still ours."""
        client = await self.store.connect()
        async with unavailable_as_error():
            if await client.get(self.key) == self.token:
                await client.delete(self.key)
