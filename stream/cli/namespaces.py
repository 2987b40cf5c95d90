"""``rfm-stream promote`` / ``drop``: switch the live name to a backfilled namespace, delete one."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from schemas.settings import Settings
from stream.cli.base import Subcommands
from stream.cli.options import add_settings_options, settings_from

if TYPE_CHECKING:
    from state.connection import RedisClient

__all__ = ["add_drop", "add_promote", "cmd_drop", "cmd_promote"]

T = TypeVar("T")


def add_promote(sub: Subcommands) -> None:
    promote = sub.add_parser(
        "promote", help="make a backfilled namespace serve the live name (RFM_NAMESPACE)"
    )
    promote.add_argument("target", metavar="NAMESPACE")
    add_settings_options(promote)
    promote.set_defaults(func=cmd_promote)


def add_drop(sub: Subcommands) -> None:
    drop = sub.add_parser("drop", help="delete a namespace that no longer serves the live name")
    drop.add_argument("target", metavar="NAMESPACE")
    add_settings_options(drop)
    drop.set_defaults(func=cmd_drop)


async def _with_redis(settings: Settings, fn: Callable[[RedisClient], Awaitable[T]]) -> T:
    """Run ``fn(client)`` with a client for ``RFM_REDIS_URL`` (one server or a cluster)."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisClusterException

    from schemas.errors import StoreUnavailable
    from state.connection import connect, tls_options

    try:
        client = await connect(
            settings.redis_url.get_secret_value(), decode_responses=True, **tls_options(settings)
        )
    except (OSError, RedisConnectionError, RedisClusterException) as exc:
        raise StoreUnavailable(f"redis unavailable: {exc}") from None
    try:
        return await fn(client)
    except (OSError, RedisConnectionError) as exc:
        raise StoreUnavailable(f"redis unavailable: {exc}") from None
    finally:
        await client.aclose()


def cmd_promote(args: argparse.Namespace) -> int:
    """One atomic switch in Redis; the workers follow at their next decay tick."""
    import asyncio

    from state.namespaces import checked_name, promote

    s = settings_from(args)
    checked_name(args.target)

    async def run(client: RedisClient) -> str:
        await _refuse_other_layout(s, client, args.target)
        return await promote(client, s.key_prefix, s.namespace, args.target)

    old = asyncio.run(_with_redis(s, run))
    print(
        f"namespace {args.target!r} now serves {s.namespace!r} (was {old!r}); running workers "
        f"switch within {s.decay_interval} ms. Once they published its outbox, drop the old "
        f"one with: rfm-stream drop {old}"
    )
    return 0


async def _refuse_other_layout(settings: Settings, client: RedisClient, target: str) -> None:
    """Promoting a namespace built for another partition count than the topic's would make
    every worker refuse to start on it: refuse the promote instead (if Kafka answers)."""
    from schemas.errors import LayoutMismatch
    from state.keys import Keys
    from state.layout import mismatch, recorded_layout
    from state.store import RedisStore
    from stream.kafka.clients import topic_partitions

    n = await topic_partitions(settings, timeout_s=5)
    built = await recorded_layout(RedisStore(client, Keys(settings.key_prefix, target)))
    if n is not None and built is not None and built[0] != n:
        raise LayoutMismatch(mismatch(target, built, settings.purchases_topic, n))


def cmd_drop(args: argparse.Namespace) -> int:
    """Refused for a namespace still serving a name or with an unpublished outbox."""
    import asyncio

    from state.namespaces import checked_name, drop

    s = settings_from(args)
    checked_name(args.target)
    n = asyncio.run(_with_redis(s, lambda c: drop(c, s.key_prefix, s.namespace, args.target)))
    print(f"dropped namespace {args.target!r}: {n:,} keys")
    return 0
