"""One exception tree for rfm-stream; policy lives on the type (``retriable``)."""

from __future__ import annotations

__all__ = [
    "BrokerUnavailable",
    "CommitConflict",
    "CommitRefused",
    "Fenced",
    "InvalidEvent",
    "LayoutMismatch",
    "Moved",
    "RfmStreamError",
    "SettingsError",
    "StateLost",
    "StoreMisconfigured",
    "StoreUnavailable",
]


class RfmStreamError(Exception):
    """Root of every error this project raises on purpose."""

    retriable: bool = False


class SettingsError(RfmStreamError):
    """A setting is wrong; the message is one line naming it."""


class InvalidEvent(RfmStreamError):
    """Why a message is not a valid event; ``error_class`` names the kind of problem.

    Never escapes the agent: it is turned into a dead letter.
    """

    def __init__(self, error_class: str, message: str) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message


class Fenced(RfmStreamError):
    """This worker no longer owns the partition (its epoch is stale): drop the batch."""


class Moved(RfmStreamError):
    """The namespace was promoted away; ``target`` serves the name now."""

    def __init__(self, target: str) -> None:
        super().__init__(f"namespace moved to {target!r}")
        self.target = target


class LayoutMismatch(RfmStreamError):
    """The topic's partition count is not the one the namespace was built with: its keys
    are laid out per partition, so nothing may read or write it with another count."""


class StateLost(RfmStreamError):
    """Redis no longer holds what this worker committed for a partition (restored from an
    older snapshot, lost its last writes, or came back empty): claim it again and re-read
    from what Redis has."""

    retriable = True


class CommitConflict(RfmStreamError):
    """State changed between load and commit (another writer): reload and retry."""

    retriable = True


class StoreMisconfigured(SettingsError):
    """Redis refuses this process for a reason no retry can change (the login, the TLS
    handshake, an ACL): the message is one line naming the server and the cause."""


class StoreUnavailable(RfmStreamError):
    """Redis cannot be reached; stop consuming and retry with backoff."""

    retriable = True


class BrokerUnavailable(RfmStreamError):
    """The broker did not answer what a run needs to go on (e.g. a partition's last
    records when a backfill measures its range): better to fail than to end short."""


class CommitRefused(RfmStreamError):
    """The commit was refused whole and nothing was written: a state larger than
    :data:`state.codec.MAX_FIELDS`, or a batch the commit script's checks reject (a
    malformed argument, a key of the wrong type). Retrying the same batch can't help."""
