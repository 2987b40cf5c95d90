"""Namespaces: which one serves the live name, promoting a backfilled one, dropping old ones.

The live worker serves a *name* (``RFM_NAMESPACE``); a pointer key says which physical
namespace holds that name's state (none: the name itself). What protects them:

- A namespace argument is validated like ``RFM_NAMESPACE`` (:func:`checked_name`) and is
  only ever put into a SCAN pattern escaped (:func:`glob_escape`): ``drop '*'`` is a
  one-line refusal, never "every namespace".
- A backfill marks each partition of its namespace ``build=running`` before it reads and
  ``build=done`` once it finished (:data:`BUILD`); ``promote`` refuses a namespace any of
  whose partitions is not done (the live worker would replay the rest of history in live
  mode: a campaign flood).
- Nothing may claim the namespace a pointer makes the live one under another name
  (:func:`served_names`): a backfill into it or a promote of it would bump its epochs
  and fence the live worker.
- ``drop`` refuses the serving namespace and one whose outbox still holds transitions.

Promotion is one atomic step on a single Redis (one script, :data:`PROMOTE`):

1. Check, again inside the script: the pointer still names the namespace the command
   saw serving, and every partition of the target is built and not retired.
2. Bump the epochs of the target's partitions: a backfill still writing there is fenced.
3. Point the name at the target (the commit point).
4. Mark every partition of the old namespace ``moved`` (and bump its epoch): from then on
   the commit script refuses any write there. The worker notices (a refused commit, or the
   pointer on its next timer tick), publishes what its old outbox still holds and
   restarts on the target, resuming at the target's recorded offsets.
5. Record the old namespace as *retired* for the name: whatever its outboxes still hold
   is published by the workers serving the name (``stream.live.retired_outboxes``) before
   ``drop`` can delete it.

On a Redis Cluster the partitions' metas, the pointer and the retired set live in
different slots, so no one script can hold them all: the same steps run as per-slot
scripts in that order, the pointer's compare-and-set (3, with 5 in its slot) being the
commit point. Every prefix of the sequence is safe (before 3 nothing serves the target;
after it the worker switches on its next tick even before 4 lands) and a promote cut
short is completed by running it again.
"""

from __future__ import annotations

from typing import Annotated, cast

from pydantic import TypeAdapter, ValidationError
from redis.exceptions import ResponseError

from schemas.errors import RfmStreamError, SettingsError
from schemas.settings import Settings
from state.connection import RedisClient, is_cluster
from state.keys import Keys

__all__ = [
    "BUILD",
    "BUILDING",
    "BUILT",
    "NamespaceRefused",
    "checked_name",
    "drop",
    "glob_escape",
    "outbox_left",
    "promote",
    "refuse_claiming_served",
    "resolve",
    "retire_done",
    "retired",
    "served_names",
]

BUILD = "build"
"""Meta field of a backfilled partition: :data:`BUILDING` while a backfill writes it,
:data:`BUILT` once the backfill finished (read, decays fired, ranked and swept)."""
BUILDING = "running"
BUILT = "done"


class NamespaceRefused(RfmStreamError):
    """An operation on a namespace that would lose, double or flood: refused, one line."""


_NAME: TypeAdapter[str] = TypeAdapter(Annotated[str, *Settings.model_fields["namespace"].metadata])
"""``RFM_NAMESPACE``'s own rule (schemas.settings), reused for every namespace argument."""


def checked_name(text: str, what: str = "namespace") -> str:
    """``text`` if it is a valid namespace name, else a one-line :class:`SettingsError`."""
    try:
        return _NAME.validate_python(text)
    except ValidationError:
        raise SettingsError(
            f"{what} {text!r} is not a namespace name (like RFM_NAMESPACE: 1-32 of a-z, 0-9, "
            "'_' and '-', starting with a letter or digit; never a pattern)"
        ) from None


def glob_escape(text: str) -> str:
    """``text`` matched literally in a Redis glob (SCAN MATCH, KEYS): ``* ? [ ] \\``
    escaped. Every pattern built from a name goes through here."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _retired_key(prefix: str, name: str) -> str:
    """The set of namespaces retired from serving ``name`` whose outboxes may still hold
    transitions; hash-tagged like the pointer, so one cluster slot holds both."""
    return "{" + Keys(prefix, name).active() + "}:retired"


async def resolve(client: RedisClient, prefix: str, name: str) -> str:
    """The physical namespace serving ``name``."""
    target = cast(str | None, await client.get(Keys(prefix, name).active()))  # decoded
    return target or name


async def _scan(client: RedisClient, pattern: str) -> list[str]:
    return [k async for k in client.scan_iter(pattern, count=1000)]


async def _meta_partitions(client: RedisClient, prefix: str, namespace: str) -> list[int]:
    """The partitions of ``namespace`` that have a meta hash (escaped SCAN)."""
    tag = glob_escape(f"{prefix}:{{{namespace}:")
    out = []
    for key in await _scan(client, f"{tag}*}}:meta"):
        part = key[len(f"{prefix}:{{{namespace}:") : -len("}:meta")]
        if part.isdigit():
            out.append(int(part))
    return sorted(out)


async def served_names(client: RedisClient, prefix: str, namespace: str) -> list[str]:
    """The names whose pointer makes ``namespace`` the live one."""
    head = Keys(prefix, "").active()
    names = []
    for key in await _scan(client, glob_escape(head) + "*"):
        if await client.get(key) == namespace:
            names.append(key[len(head) :])
    return sorted(names)


async def refuse_claiming_served(
    client: RedisClient, prefix: str, namespace: str, doing: str
) -> None:
    """Raise unless ``namespace`` is free to be claimed by ``doing`` (a backfill into it,
    a promote of it): not live under any name, not retired by an earlier promote."""
    names = await served_names(client, prefix, namespace)
    if names:
        raise NamespaceRefused(
            f"{doing} {namespace!r} refused: it is the live namespace of {names[0]!r} "
            "(promoted); claiming it would fence the live worker. Use a new namespace"
        )
    for p in await _meta_partitions(client, prefix, namespace):
        moved = await client.hget(Keys(prefix, namespace).meta(p), "moved")
        if moved:
            raise NamespaceRefused(
                f"{doing} {namespace!r} refused: it was retired by a promote of {moved!r}; "
                f"drop it and use a new namespace"
            )


async def outbox_left(client: RedisClient, prefix: str, namespace: str) -> int:
    """Transitions committed to ``namespace``'s outboxes and not published yet."""
    keys = Keys(prefix, namespace)
    parts = await _meta_partitions(client, prefix, namespace)
    return sum([await client.xlen(keys.outbox(p)) for p in parts])


async def retired(client: RedisClient, prefix: str, name: str) -> list[str]:
    """Namespaces that served ``name`` before a promote and may hold unpublished ones."""
    return sorted(cast(set[str], await client.smembers(_retired_key(prefix, name))))  # decoded


async def retire_done(client: RedisClient, prefix: str, name: str, namespace: str) -> bool:
    """Forget ``namespace`` as retired from ``name`` if its outboxes are all empty."""
    if await outbox_left(client, prefix, namespace):
        return False
    await client.srem(_retired_key(prefix, name), namespace)
    return True


# ---------------------------------------------------------------------- promote
_CHECK_TARGET = """
-- one target partition: KEYS[1]=meta. Refuses (error) unless built and not retired.
local st = redis.call('HMGET', KEYS[1], 'build', 'moved')
if st[2] then return redis.error_reply('RETIRED ' .. st[2]) end
if st[1] ~= 'done' then return redis.error_reply('UNBUILT ' .. tostring(st[1])) end
return 1
"""

PROMOTE = """
-- KEYS[1]=pointer KEYS[2]=retired set, then ARGV[4] target metas, then the old metas
-- ARGV: name, the old namespace the caller saw serving, target, #target metas
local cur = redis.call('GET', KEYS[1]) or ARGV[1]
if cur ~= ARGV[2] then return redis.error_reply('RACE ' .. cur) end
local n = tonumber(ARGV[4])
for i = 3, 2 + n do
  local st = redis.call('HMGET', KEYS[i], 'build', 'moved')
  if st[2] then return redis.error_reply('RETIRED ' .. st[2]) end
  if st[1] ~= 'done' then return redis.error_reply('UNBUILT ' .. (i - 3)) end
end
for i = 3, 2 + n do redis.call('HINCRBY', KEYS[i], 'epoch', 1) end
redis.call('SET', KEYS[1], ARGV[3])
for i = 3 + n, #KEYS do
  redis.call('HSET', KEYS[i], 'moved', ARGV[3])
  redis.call('HINCRBY', KEYS[i], 'epoch', 1)
end
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SREM', KEYS[2], ARGV[3])
return 1
"""

_SWITCH_POINTER = """
-- KEYS[1]=pointer KEYS[2]=retired set; ARGV: name, old seen serving, target
local cur = redis.call('GET', KEYS[1]) or ARGV[1]
if cur ~= ARGV[2] then return redis.error_reply('RACE ' .. cur) end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SREM', KEYS[2], ARGV[3])
return 1
"""

_FENCE = """
-- KEYS[1]=meta; ARGV[1]=moved-to ('' : only bump the epoch)
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'moved', ARGV[1]) end
return redis.call('HINCRBY', KEYS[1], 'epoch', 1)
"""


async def _target_partitions(client: RedisClient, prefix: str, target: str) -> int:
    """How many partitions the target was built with (its layout), or refuse."""
    parts = await client.hget(Keys(prefix, target).layout(), "partitions")
    if parts is None:
        raise NamespaceRefused(f"namespace {target!r} has no state: backfill into it first")
    return int(parts)


def _refusal(exc: ResponseError, name: str, target: str) -> RfmStreamError:
    text = str(exc)
    if text.startswith("UNBUILT"):
        return NamespaceRefused(
            f"namespace {target!r} is not a finished backfill (partition "
            f"{text.split(' ', 1)[1]} is not done): run the backfill into it to the end "
            "(again, if it was interrupted), then promote"
        )
    if text.startswith("RETIRED"):
        return NamespaceRefused(
            f"namespace {target!r} was retired by a promote of {text.split(' ', 1)[1]!r}: "
            "backfill a new namespace instead"
        )
    if text.startswith("RACE"):
        return NamespaceRefused(
            f"{name!r} changed hands while promoting (now {text.split(' ', 1)[1]!r}): "
            "check with the other operator, then run the promote again"
        )
    raise exc


async def promote(client: RedisClient, prefix: str, name: str, target: str) -> str:
    """Make ``target`` serve ``name`` in one atomic step; returns the namespace it replaced.

    Refuses a target that is not a finished backfill, that was retired, that is live
    under another name, or an invalid name (see the module docstring)."""
    checked_name(name, "RFM_NAMESPACE")
    checked_name(target)
    old = await resolve(client, prefix, name)
    if old == target:
        await _complete(client, prefix, name, target)
        raise NamespaceRefused(f"namespace {target!r} already serves {name!r}")
    others = [n for n in await served_names(client, prefix, target) if n != name]
    if others:
        raise NamespaceRefused(
            f"promote {target!r} refused: it is the live namespace of {others[0]!r}; "
            "claiming it would fence that name's live worker. Backfill a new namespace"
        )
    n = await _target_partitions(client, prefix, target)
    tkeys, okeys = Keys(prefix, target), Keys(prefix, old)
    metas = [tkeys.meta(p) for p in range(n)]
    olds = [okeys.meta(p) for p in await _meta_partitions(client, prefix, old)]
    pointer, retired_set = Keys(prefix, name).active(), _retired_key(prefix, name)
    try:
        if not is_cluster(client):
            script = client.register_script(PROMOTE)
            await script(keys=[pointer, retired_set, *metas, *olds], args=[name, old, target, n])
            return old
        # a cluster: per-slot steps, in the order of the single script (module docstring)
        check = client.register_script(_CHECK_TARGET)
        for meta in metas:
            await check(keys=[meta])
        fence = client.register_script(_FENCE)
        for meta in metas:
            await fence(keys=[meta], args=[""])
        switch = client.register_script(_SWITCH_POINTER)
        await switch(keys=[pointer, retired_set], args=[name, old, target])
    except ResponseError as exc:
        raise _refusal(exc, name, target) from None
    await _complete(client, prefix, name, target)
    return old


async def _complete(client: RedisClient, prefix: str, name: str, target: str) -> None:
    """Mark every namespace retired from ``name`` as moved to ``target`` (idempotent):
    step 4 of a cluster promote, and what a second run of a promote cut short after its
    commit point finishes."""
    fence = client.register_script(_FENCE)
    for old in await retired(client, prefix, name):
        keys = Keys(prefix, old)
        for p in await _meta_partitions(client, prefix, old):
            if not await client.hget(keys.meta(p), "moved"):  # marked by its own promote
                await fence(keys=[keys.meta(p)], args=[target])


# ---------------------------------------------------------------------- drop
async def drop(client: RedisClient, prefix: str, name: str, namespace: str) -> int:
    """Delete every key of ``namespace``; refuses the one serving ``name`` (or any other
    name), and one whose outbox still holds transitions not yet published."""
    checked_name(namespace)
    if await resolve(client, prefix, name) == namespace:
        raise NamespaceRefused(f"namespace {namespace!r} serves {name!r}: promote another first")
    served = await served_names(client, prefix, namespace)
    if served:
        raise NamespaceRefused(
            f"namespace {namespace!r} serves {served[0]!r}: promote another first"
        )
    if namespace in await retired(client, prefix, name):
        keys = Keys(prefix, namespace)
        for p in await _meta_partitions(client, prefix, namespace):
            if not await client.hget(keys.meta(p), "moved"):  # a commit could still land
                raise NamespaceRefused(
                    f"namespace {namespace!r}: the promote away from it did not complete "
                    f"(partition {p} not marked moved): run that promote again, then drop"
                )
    left = await outbox_left(client, prefix, namespace)
    if left:
        raise NamespaceRefused(
            f"namespace {namespace!r} still has {left:,} transitions in its outbox, not yet "
            f"published: run a worker for {name!r} until they are, then drop"
        )
    pattern = glob_escape(f"{prefix}:{{{namespace}:") + "*}:*"
    found = await _scan(client, pattern)
    for i in range(0, len(found), 1000):
        await client.unlink(*found[i : i + 1000])
    await client.srem(_retired_key(prefix, name), namespace)
    return len(found)
